/**
 * Client-side encryption of what we store (WAL objects, base backups): AES-256-GCM, before the
 * bytes leave the machine, so the store (and whoever reads the bucket) sees only ciphertext.
 *
 *   header   "BPGE" | version 1 | 3 bytes 0 | key id (8) | salt (16)          32 bytes
 *   records  AES-256-GCM of 1 MiB of plaintext each (the last shorter), + 16-byte tag
 *
 * Each object gets its own key, HKDF-SHA256(master key, salt); record i's nonce is i (11 bytes,
 * big-endian) and a last-record flag, so records cannot be reordered, dropped or cut off
 * unnoticed (the STREAM construction). The key id (the first 8 bytes of SHA-256 of
 * "beyond-pg key id" and the key) says which master key made an object: rotation is a new key
 * first in the list, the old ones kept after it until nothing made with them is left.
 * Streaming (a backup is never in memory whole): `Sealer` and `Opener` take chunks of any size.
 */
import { hex } from "../util/crypto.ts";
import { aeadAvailable, gcmOpen, gcmSeal } from "../../ffi/mod.ts";
import { concat } from "../util/bytes.ts";

export const RECORD = 1 << 20;
const TAG = 16;
const HEADER = 32;
const MAGIC = [0x42, 0x50, 0x47, 0x45]; // "BPGE"
export const ALGORITHM = "aes-256-gcm";

type NodeCrypto = typeof import("node:crypto");
let nodeCrypto: NodeCrypto | undefined;
/** node:crypto, loaded when first needed (a static import would start Node compatibility). */
export async function loadCrypto(): Promise<NodeCrypto> {
  return (nodeCrypto ??= await import("node:crypto"));
}

export class EnvelopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EnvelopeError";
  }
}

/** A master key (32 bytes) and its id. */
export interface ArchiveKey {
  id: string;
  key: Uint8Array;
}

export function keyFromBase64(b64: string, c: NodeCrypto): ArchiveKey {
  const key = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  const id = c.createHash("sha256").update("beyond-pg key id").update(key).digest().subarray(0, 8);
  return { id: hex(id), key };
}

function nonce(i: number, last: boolean): Uint8Array<ArrayBuffer> {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(3, BigInt(i));
  n[11] = last ? 1 : 0;
  return n;
}

function objectKey(c: NodeCrypto, master: Uint8Array, salt: Uint8Array): Uint8Array {
  return new Uint8Array(c.hkdfSync("sha256", master, salt, "beyond-pg archive v1", 32));
}

function headerFor(k: ArchiveKey, salt: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER);
  header.set(MAGIC);
  header[4] = 1;
  header.set(Uint8Array.from(k.id.match(/../g)!.map((h) => parseInt(h, 16))), 8);
  header.set(salt, 16);
  return header;
}

/**
 * One record: AES-256-GCM by OpenSSL (ffi/libcrypto.ts: ~50× Deno's own here) where it can be
 * loaded, else node:crypto. The same bytes either way; written into `into` when given.
 */
function sealRecord(
  c: NodeCrypto,
  key: Uint8Array,
  iv: Uint8Array,
  plain: Uint8Array,
  into?: Uint8Array,
): Uint8Array {
  if (aeadAvailable()) return gcmSeal(key, iv, plain, into);
  const cipher = c.createCipheriv("aes-256-gcm", key, iv);
  const sealed = concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  if (!into) return sealed;
  into.set(sealed);
  return into.subarray(0, sealed.length);
}

/** The plaintext of one record, or undefined when it fails its check. */
function openRecord(
  c: NodeCrypto,
  key: Uint8Array,
  iv: Uint8Array,
  record: Uint8Array,
): Uint8Array | undefined {
  if (aeadAvailable()) return gcmOpen(key, iv, record);
  if (record.length < TAG) return undefined;
  const d = c.createDecipheriv("aes-256-gcm", key, iv);
  d.setAuthTag(record.subarray(record.length - TAG));
  try {
    return concat([d.update(record.subarray(0, record.length - TAG)), d.final()]);
  } catch {
    return undefined;
  }
}

/** A new object's key (from a fresh salt) and its header. */
function newObject(c: NodeCrypto, k: ArchiveKey): { key: Uint8Array; header: Uint8Array } {
  const salt = c.randomBytes(16);
  return { key: objectKey(c, k.key, salt), header: headerFor(k, salt) };
}

/**
 * How a whole buffer of `length` bytes is cut into records: full records, the last one the
 * rest, one empty record for nothing (what Sealer does to a stream). [start, end, last] each.
 */
function records(length: number): [number, number, boolean][] {
  const n = Math.max(1, Math.ceil(length / RECORD));
  return Array.from({ length: n }, (_, i) => [
    i * RECORD,
    Math.min(length, (i + 1) * RECORD),
    i === n - 1,
  ]);
}

/** Encrypts a stream: push() plaintext, get ciphertext; finish() for the last record. */
export class Sealer {
  readonly #c: NodeCrypto;
  readonly #key: Uint8Array;
  #header: Uint8Array | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #i = 0;

  constructor(c: NodeCrypto, k: ArchiveKey) {
    this.#c = c;
    ({ key: this.#key, header: this.#header } = newObject(c, k));
  }

  #record(plain: Uint8Array, last: boolean): Uint8Array {
    return sealRecord(this.#c, this.#key, nonce(this.#i++, last), plain);
  }

  #take(n: number): Uint8Array {
    const all = concat(this.#pending);
    this.#pending = n < all.length ? [all.subarray(n)] : [];
    this.#pendingBytes = all.length - n;
    return all.subarray(0, n);
  }

  /** Ciphertext for what is complete so far (one record is always held back: the last). */
  push(plain: Uint8Array): Uint8Array {
    this.#pending.push(plain);
    this.#pendingBytes += plain.length;
    const out: Uint8Array[] = [];
    if (this.#header) {
      out.push(this.#header);
      this.#header = undefined;
    }
    while (this.#pendingBytes > RECORD) out.push(this.#record(this.#take(RECORD), false));
    return concat(out);
  }

  finish(): Uint8Array {
    const head = this.#header ?? new Uint8Array(0);
    this.#header = undefined;
    return concat([head, this.#record(this.#take(this.#pendingBytes), true)]);
  }
}

/** The key id an object was sealed with (from its header), or undefined if it is not sealed. */
export function sealedKeyId(first: Uint8Array): string | undefined {
  if (first.length < HEADER || MAGIC.some((b, i) => first[i] !== b) || first[4] !== 1) {
    return undefined;
  }
  return hex(first.subarray(8, 16));
}

/** Decrypts a stream sealed by Sealer: push() ciphertext, get plaintext; finish() checks the end. */
export class Opener {
  readonly #c: NodeCrypto;
  readonly #keys: ArchiveKey[];
  readonly #what: string;
  #key: Uint8Array | undefined;
  #buf: Uint8Array = new Uint8Array(0);
  #i = 0;

  /** `what` names the object in errors; `keys`: every key this machine has (the first encrypts). */
  constructor(c: NodeCrypto, keys: ArchiveKey[], what: string) {
    this.#c = c;
    this.#keys = keys;
    this.#what = what;
  }

  #open(record: Uint8Array, last: boolean): Uint8Array {
    const plain = openRecord(this.#c, this.#key!, nonce(this.#i++, last), record);
    if (!plain) {
      throw new EnvelopeError(
        `${this.#what} does not decrypt (record ${
          this.#i - 1
        } fails its check): it is corrupt or cut short; restore from another copy`,
      );
    }
    return plain;
  }

  push(cipher: Uint8Array): Uint8Array {
    this.#buf = concat([this.#buf, cipher]);
    const out: Uint8Array[] = [];
    if (!this.#key) {
      if (this.#buf.length < HEADER) return new Uint8Array(0);
      const id = sealedKeyId(this.#buf);
      if (id === undefined) {
        throw new EnvelopeError(`${this.#what} is not encrypted by beyond-pg (no BPGE header)`);
      }
      const k = this.#keys.find((x) => x.id === id);
      if (!k) {
        throw new EnvelopeError(
          `${this.#what} was encrypted with key id ${id}, and BEYOND_PG_ARCHIVE_ENCRYPTION_KEY has ${
            this.#keys.length ? `only ${this.#keys.map((x) => x.id).join(", ")}` : "no key"
          }; add the key that made it (rotation keeps old keys after the new one)`,
        );
      }
      this.#key = objectKey(this.#c, k.key, this.#buf.subarray(16, 32));
      this.#buf = this.#buf.subarray(HEADER);
    }
    // A full record is final only if nothing follows it: hold one back.
    while (this.#buf.length > RECORD + TAG) {
      out.push(this.#open(this.#buf.subarray(0, RECORD + TAG), false));
      this.#buf = this.#buf.subarray(RECORD + TAG);
    }
    return concat(out);
  }

  finish(): Uint8Array {
    if (!this.#key || this.#buf.length < TAG) {
      throw new EnvelopeError(
        `${this.#what} is cut short (no last record); restore from another copy`,
      );
    }
    const out = this.#open(this.#buf, true);
    this.#buf = new Uint8Array(0);
    return out;
  }
}

/** Seal a whole buffer (a WAL object). */
export function seal(c: NodeCrypto, k: ArchiveKey, plain: Uint8Array): Uint8Array {
  // Records cut as Sealer cuts a stream (records()), each sealed straight into its place:
  // Sealer's buffering copies a whole WAL object several times over.
  const o = newObject(c, k);
  const cuts = records(plain.length);
  const out = new Uint8Array(HEADER + plain.length + cuts.length * TAG);
  out.set(o.header);
  let at = HEADER;
  cuts.forEach(([start, end, last], i) => {
    at += sealRecord(c, o.key, nonce(i, last), plain.subarray(start, end), out.subarray(at))
      .length;
  });
  return out;
}

/**
 * seal() of a whole buffer, for the archive service: with OpenSSL, seal() itself (a WAL object
 * in about a millisecond); without it, through WebCrypto: the same format, records cut the same
 * way (records()), but each record encrypted off the event loop, in parallel (Deno runs
 * WebCrypto on its blocking pool): under --jitless, Deno's own AES on the calling thread
 * stalled every upload in flight.
 */
export async function sealAsync(
  c: NodeCrypto,
  k: ArchiveKey,
  plain: Uint8Array,
): Promise<Uint8Array> {
  return aeadAvailable() ? seal(c, k, plain) : await sealWithWebCrypto(c, k, plain);
}

/** sealAsync() without OpenSSL (exported for its test). */
export async function sealWithWebCrypto(
  c: NodeCrypto,
  k: ArchiveKey,
  plain: Uint8Array,
): Promise<Uint8Array> {
  const o = newObject(c, k);
  const key = await crypto.subtle.importKey(
    "raw",
    o.key as Uint8Array<ArrayBuffer>,
    "AES-GCM",
    false,
    ["encrypt"],
  );
  const sealed = await Promise.all(
    records(plain.length).map(([start, end, last], i) =>
      crypto.subtle.encrypt(
        { name: "AES-GCM", iv: nonce(i, last), tagLength: TAG * 8 },
        key,
        plain.subarray(start, end) as Uint8Array<ArrayBuffer>,
      )
    ),
  );
  return concat([o.header, ...sealed.map((r) => new Uint8Array(r))]);
}

/** Open a whole buffer. */
export function open(
  c: NodeCrypto,
  keys: ArchiveKey[],
  sealed: Uint8Array,
  what: string,
): Uint8Array {
  const o = new Opener(c, keys, what);
  return concat([o.push(sealed), o.finish()]);
}

/** A TransformStream that seals (or opens) what flows through it. */
export function sealStream(c: NodeCrypto, k: ArchiveKey): TransformStream<Uint8Array, Uint8Array> {
  const s = new Sealer(c, k);
  return new TransformStream({
    transform(chunk, ctl) {
      const out = s.push(chunk);
      if (out.length) ctl.enqueue(out);
    },
    flush(ctl) {
      ctl.enqueue(s.finish());
    },
  });
}

export function openStream(
  c: NodeCrypto,
  keys: ArchiveKey[],
  what: string,
): TransformStream<Uint8Array, Uint8Array> {
  const o = new Opener(c, keys, what);
  return new TransformStream({
    transform(chunk, ctl) {
      const out = o.push(chunk);
      if (out.length) ctl.enqueue(out);
    },
    flush(ctl) {
      const out = o.finish();
      if (out.length) ctl.enqueue(out);
    },
  });
}
