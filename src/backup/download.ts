/**
 * EFFECT: a base backup read back from S3 as ranged GETs, several at once, handed on in order:
 * while one range is extracted the next ones download (one stream capped what a restore could
 * reach), and a range whose stream stalls or breaks is asked for again from the byte where it
 * stopped — never the whole object again. When the manifest lists the parts' SHA-256, each range
 * is one part and is checked as it ends (a store that serves wrong bytes is caught at that part;
 * asked once more if none of it was handed on yet: Flight); the whole object's SHA-256 is still
 * checked at the end, and nothing is committed before it.
 * With a `cache` (part_spool.ts), each checked part is also kept on disk, and a part kept by an
 * earlier, interrupted restore is used instead of downloading it — once its SHA-256 matches.
 */
import { S3Error } from "../s3/client.ts";
import type { S3Client } from "../s3/client.ts";
import { sha256Hex } from "../util/crypto.ts";
import { sleep } from "../util/sleep.ts";
import { partSize } from "./parts.ts";

export interface Range {
  start: number;
  end: number;
  /** SHA-256 (hex) the range must have, when the manifest lists its parts. */
  sha256?: string;
}

/** PURE: the ranges to fetch — the parts when their hashes are known, else `chunk`-sized. */
export function rangesOf(
  size: number,
  o: { partSize?: number; partSha256?: readonly string[]; chunkBytes?: number },
): Range[] {
  const out: Range[] = [];
  if (o.partSize && o.partSha256?.length) {
    let start = 0;
    for (const [i, sha256] of o.partSha256.entries()) {
      const end = i === o.partSha256.length - 1 ? size : start + partSize(i + 1, o.partSize)!;
      out.push({ start, end, sha256 });
      start = end;
    }
    return out;
  }
  const chunk = o.chunkBytes ?? 16 << 20;
  for (let start = 0; start < size; start += chunk) {
    out.push({ start, end: Math.min(size, start + chunk) });
  }
  return out;
}

export interface DownloadStats {
  /** Ranges asked for again after a stall or a broken stream (from where they stopped). */
  resumed: number;
  /** Ranges fetched again whole because their bytes did not match the part's hash. */
  refetched: number;
  /** Parts taken from the cache (an interrupted restore's), and their bytes. */
  reused?: number;
  reusedBytes?: number;
  /** Parts in the cache whose SHA-256 did not match (downloaded again). */
  discarded?: number;
}

/** Where checked parts are kept between attempts at a restore (part_spool.ts). */
export interface PartCache {
  /** The bytes kept for part `i`, unchecked (undefined: none). */
  get(i: number): Promise<Uint8Array | undefined>;
  /** Keep part `i` (already checked against its SHA-256). */
  put(i: number, bytes: Uint8Array): Promise<void>;
}

export interface DownloadOptions {
  size: number;
  etag?: string;
  partSize?: number;
  partSha256?: readonly string[];
  chunkBytes?: number;
  /** Ranges in flight (default 3). */
  parallel?: number;
  /** Resumes of one range before giving up (default 8). */
  attempts?: number;
  /** The idle timeout of each read. */
  idleMs?: number;
  stats?: DownloadStats;
  signal?: AbortSignal;
  /** Parts kept across attempts (only parts with a SHA-256 in the manifest). */
  cache?: PartCache;
}

/**
 * A range in flight: its buffer fills in order (`got`), and the range at the head of the line
 * hands its bytes on as they arrive (`handed`), before its SHA-256 can be checked: the restore
 * commits nothing until the whole object's SHA-256 matches, and what takes the bytes (tar, as
 * postgres) is no more than postgres. A range that fails its hash is fetched again only while
 * none of it was handed on.
 */
class Flight {
  /** Its bytes: filled as they arrive, or a kept part taken whole. */
  buf: Uint8Array;
  got = 0;
  handed = 0;
  ok = false;
  error: unknown;
  #wake: (() => void) | undefined;

  constructor(size: number) {
    this.buf = new Uint8Array(size);
  }

  /** Something changed: bytes arrived, or the range settled. */
  changed(): void {
    this.#wake?.();
    this.#wake = undefined;
  }

  /** Until the next change. */
  next(): Promise<void> {
    return new Promise((r) => this.#wake = r);
  }
}

/** One range, resumed from where a broken stream stopped. */
async function fetchRange(
  client: S3Client,
  key: string,
  r: Range,
  i: number,
  o: DownloadOptions,
  f: Flight,
): Promise<void> {
  const cache = r.sha256 ? o.cache : undefined;
  const kept = await cache?.get(i);
  if (kept) {
    if (kept.length === r.end - r.start && (await sha256Hex(kept)) === r.sha256) {
      if (o.stats) {
        o.stats.reused = (o.stats.reused ?? 0) + 1;
        o.stats.reusedBytes = (o.stats.reusedBytes ?? 0) + kept.length;
      }
      f.buf = kept;
      f.got = kept.length;
      return;
    }
    if (o.stats) o.stats.discarded = (o.stats.discarded ?? 0) + 1;
  }
  await downloadRange(client, key, r, o, f);
  await cache?.put(i, f.buf);
}

async function downloadRange(
  client: S3Client,
  key: string,
  r: Range,
  o: DownloadOptions,
  f: Flight,
): Promise<void> {
  const attempts = o.attempts ?? 8;
  const buf = f.buf;
  for (let whole = 0;; whole++) {
    f.got = 0;
    for (let failed = 0; f.got < buf.length;) {
      try {
        const stream = await client.getStream(key, o.idleMs, {
          range: { start: r.start + f.got, end: r.end },
          ...(o.etag ? { etag: o.etag } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        if (!stream) {
          throw new S3Error(`${key} vanished while being restored`, { transient: false });
        }
        for await (const chunk of stream) {
          if (f.got + chunk.length > buf.length) {
            throw new S3Error(`${key}: the store sent more than the range asked for`, {
              transient: false,
            });
          }
          buf.set(chunk, f.got);
          f.got += chunk.length;
          f.changed();
        }
        if (f.got < buf.length) {
          throw new S3Error(`${key}: the range ended early`, { transient: true, code: "Short" });
        }
      } catch (error) {
        const transient = error instanceof S3Error && error.transient;
        if (!transient || ++failed >= attempts || o.signal?.aborted) throw error;
        if (o.stats) o.stats.resumed++;
        await sleep(Math.min(5000, 100 * 2 ** failed) * Math.random(), o.signal);
      }
    }
    if (!r.sha256 || (await sha256Hex(buf)) === r.sha256) return;
    if (whole >= 1 || f.handed > 0) {
      throw new S3Error(
        `${key}: bytes ${r.start}–${r.end} do not match the manifest's SHA-256 of that part${
          whole ? ", twice" : ""
        }; the backup is corrupt`,
        { transient: false, code: "Corrupt" },
      );
    }
    if (o.stats) o.stats.refetched++;
  }
}

const HAND_ON = 1 << 20;

/**
 * Whether the bytes a range has and has not handed on go now: checked ones, yes; a range that
 * has all its bytes but not yet its verdict, and handed nothing on, waits for it (wrong bytes can
 * still be fetched again); one that streams, in pieces of 1 MiB or more (what follows copies per
 * piece: decryption joins each one to what it holds), and its last piece at once.
 */
function handOn(f: Flight): boolean {
  if (f.ok) return true;
  const whole = f.got === f.buf.length;
  if (whole) return f.handed > 0;
  return f.got - f.handed >= HAND_ON;
}

/** The object's bytes in order, `parallel` ranges in flight; the first streams as it comes. */
export function downloadRanges(
  client: S3Client,
  key: string,
  o: DownloadOptions,
): ReadableStream<Uint8Array> {
  const ranges = rangesOf(o.size, o);
  const parallel = Math.max(1, o.parallel ?? 3);
  // Cancelling the stream (its reader gave up) stops the ranges in flight.
  const stop = new AbortController();
  const signal = o.signal ? AbortSignal.any([o.signal, stop.signal]) : stop.signal;
  const opts = { ...o, signal };
  const pending: Flight[] = [];
  let next = 0;
  const fill = () => {
    while (pending.length < parallel && next < ranges.length) {
      const i = next++;
      const r = ranges[i]!;
      const f = new Flight(r.end - r.start);
      fetchRange(client, key, r, i, opts, f).then(
        () => f.ok = true,
        (error) => f.error = error ?? new Error("range failed"),
      ).finally(() => f.changed());
      pending.push(f);
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      // One pull ends with bytes enqueued or the stream closed (a pull that did neither would
      // leave the read that asked for it waiting).
      for (;;) {
        fill();
        const f = pending[0];
        if (!f) return ctl.close();
        if (f.error !== undefined) throw f.error;
        if (f.handed < f.got && handOn(f)) {
          const bytes = f.buf.subarray(f.handed, f.got);
          f.handed = f.got;
          return ctl.enqueue(bytes);
        }
        if (f.ok) {
          pending.shift();
          continue;
        }
        await f.next();
      }
    },
    cancel() {
      stop.abort();
    },
  }, { highWaterMark: 0 });
}
