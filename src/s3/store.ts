/**
 * The object store as the archive sees it: the five calls WAL archiving and restore make. The S3
 * client (client.ts) is one; MemoryStore (memory_store.ts) is the fake the archive's unit tests
 * use, with failures on demand.
 */
import type { ListedObject } from "./xml.ts";
import type { S3Stats } from "./client.ts";

export interface StoredObject {
  body: Uint8Array;
  metadata: Record<string, string>;
}

export interface ObjectHead {
  size: number;
  etag: string;
  metadata: Record<string, string>;
}

export interface PutOptions {
  metadata?: Record<string, string>;
  /** Only if no object has the key: "exists" otherwise. */
  ifAbsent?: boolean;
  contentType?: string;
  /** SHA-256 of the body, hex (the store verifies the body against it). */
  payloadHash?: string;
}

export interface ObjectStore {
  put(key: string, body: Uint8Array, o?: PutOptions): Promise<{ etag: string } | "exists">;
  head(key: string): Promise<ObjectHead | undefined>;
  get(
    key: string,
    timeoutMs?: number,
    o?: { maxBytes?: number },
  ): Promise<StoredObject | undefined>;
  list(prefix: string): Promise<ListedObject[]>;
  delete(key: string): Promise<void>;
  /** Requests, retries by reason and give-ups (the S3 client's; a fake may have none). */
  readonly stats?: S3Stats;
  /** Let go of kept connections (the owner is done with the store). */
  close?(): void;
}
