/**
 * An object store in memory, for the archive's unit tests: conditional PUT like S3, and
 * failures on demand (`failNext`, `down`) that surface as the S3 client's transient errors.
 */
import { S3Error } from "./client.ts";
import type { ObjectHead, ObjectStore, PutOptions, StoredObject } from "./store.ts";
import type { ListedObject } from "./xml.ts";

export class MemoryStore implements ObjectStore {
  readonly objects = new Map<string, StoredObject & { modified: Date }>();
  /** Every call fails while true (a store that is down). */
  down = false;
  /** The next N calls fail. */
  failNext = 0;
  readonly calls: string[] = [];

  #check(what: string): void {
    this.calls.push(what);
    if (this.down || this.failNext > 0) {
      if (this.failNext > 0) this.failNext--;
      throw new S3Error(`cannot reach the store (${what}: test)`, { transient: true, status: 503 });
    }
  }

  put(key: string, body: Uint8Array, o: PutOptions = {}): Promise<{ etag: string } | "exists"> {
    this.#check(`PUT ${key}`);
    if (o.ifAbsent && this.objects.has(key)) return Promise.resolve("exists");
    this.objects.set(key, {
      body: body.slice(),
      metadata: { ...o.metadata },
      modified: new Date(),
    });
    return Promise.resolve({ etag: String(body.length) });
  }

  head(key: string): Promise<ObjectHead | undefined> {
    this.#check(`HEAD ${key}`);
    const o = this.objects.get(key);
    return Promise.resolve(
      o && { size: o.body.length, etag: String(o.body.length), metadata: { ...o.metadata } },
    );
  }

  get(key: string): Promise<StoredObject | undefined> {
    this.#check(`GET ${key}`);
    const o = this.objects.get(key);
    return Promise.resolve(o && { body: o.body.slice(), metadata: { ...o.metadata } });
  }

  list(prefix: string): Promise<ListedObject[]> {
    this.#check(`LIST ${prefix}`);
    return Promise.resolve(
      [...this.objects.entries()].filter(([k]) => k.startsWith(prefix)).sort().map(([key, o]) => ({
        key,
        size: o.body.length,
        lastModified: o.modified,
      } as ListedObject)),
    );
  }

  delete(key: string): Promise<void> {
    this.#check(`DELETE ${key}`);
    this.objects.delete(key);
    return Promise.resolve();
  }
}
