/**
 * EFFECT: a base backup read back from S3 as ranged GETs, several at once, handed on in order:
 * while one range is extracted the next ones download (one stream capped what a restore could
 * reach), and a range whose stream stalls or breaks is asked for again from the byte where it
 * stopped — never the whole object again. When the manifest lists the parts' SHA-256, each range
 * is one part and is checked before it is handed on (a store that serves wrong bytes is caught
 * at that part, and asked once more); the whole object's SHA-256 is still checked at the end.
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

/** One range, resumed from where a broken stream stopped. */
async function fetchRange(
  client: S3Client,
  key: string,
  r: Range,
  i: number,
  o: DownloadOptions,
): Promise<Uint8Array> {
  const cache = r.sha256 ? o.cache : undefined;
  const kept = await cache?.get(i);
  if (kept) {
    if (kept.length === r.end - r.start && (await sha256Hex(kept)) === r.sha256) {
      if (o.stats) {
        o.stats.reused = (o.stats.reused ?? 0) + 1;
        o.stats.reusedBytes = (o.stats.reusedBytes ?? 0) + kept.length;
      }
      return kept;
    }
    if (o.stats) o.stats.discarded = (o.stats.discarded ?? 0) + 1;
  }
  const buf = await downloadRange(client, key, r, o);
  await cache?.put(i, buf);
  return buf;
}

async function downloadRange(
  client: S3Client,
  key: string,
  r: Range,
  o: DownloadOptions,
): Promise<Uint8Array> {
  const attempts = o.attempts ?? 8;
  for (let whole = 0;; whole++) {
    const buf = new Uint8Array(r.end - r.start);
    let got = 0;
    for (let failed = 0; got < buf.length;) {
      try {
        const stream = await client.getStream(key, o.idleMs, {
          range: { start: r.start + got, end: r.end },
          ...(o.etag ? { etag: o.etag } : {}),
          ...(o.signal ? { signal: o.signal } : {}),
        });
        if (!stream) {
          throw new S3Error(`${key} vanished while being restored`, { transient: false });
        }
        for await (const chunk of stream) {
          if (got + chunk.length > buf.length) {
            throw new S3Error(`${key}: the store sent more than the range asked for`, {
              transient: false,
            });
          }
          buf.set(chunk, got);
          got += chunk.length;
        }
        if (got < buf.length) {
          throw new S3Error(`${key}: the range ended early`, { transient: true, code: "Short" });
        }
      } catch (error) {
        const transient = error instanceof S3Error && error.transient;
        if (!transient || ++failed >= attempts || o.signal?.aborted) throw error;
        if (o.stats) o.stats.resumed++;
        await sleep(Math.min(5000, 100 * 2 ** failed) * Math.random(), o.signal);
      }
    }
    if (!r.sha256 || (await sha256Hex(buf)) === r.sha256) return buf;
    if (whole >= 1) {
      throw new S3Error(
        `${key}: bytes ${r.start}–${r.end} do not match the manifest's SHA-256 of that part, twice; the backup is corrupt`,
        { transient: false, code: "Corrupt" },
      );
    }
    if (o.stats) o.stats.refetched++;
  }
}

/** The object's bytes in order, `parallel` ranges in flight. */
export function downloadRanges(
  client: S3Client,
  key: string,
  o: DownloadOptions,
): ReadableStream<Uint8Array> {
  const ranges = rangesOf(o.size, o);
  const parallel = Math.max(1, o.parallel ?? 3);
  const pending: Promise<Uint8Array>[] = [];
  let next = 0;
  const fill = () => {
    while (pending.length < parallel && next < ranges.length) {
      const i = next++;
      const p = fetchRange(client, key, ranges[i]!, i, o);
      p.catch(() => {}); // read (and thrown) in order by pull
      pending.push(p);
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(ctl) {
      fill();
      const p = pending.shift();
      if (!p) return ctl.close();
      const bytes = await p;
      fill();
      if (bytes.length) ctl.enqueue(bytes);
      if (!pending.length && next >= ranges.length) ctl.close();
    },
  }, { highWaterMark: 0 });
}
