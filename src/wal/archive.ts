/**
 * EFFECT: the archive_command contract, for one file (used by `beyond-pg archive` on its own
 * and by the supervisor's uploader):
 *  - 0 only once the object is fully stored (S3 PUT is all-or-nothing, and the store checks
 *    the body against the SHA-256 signed into the request) — never a visible partial object;
 *  - already stored with the same content (its size in metadata, then the stored copy
 *    decompressed and compared byte for byte) → 0;
 *    different content → an error, nothing overwritten (PUT If-None-Match: *), for every kind
 *    of file, `.history` included — except that two copies of a segment ending in the same
 *    switch record are the same WAL whatever follows that record (reader.ts switchEndIn);
 *  - the bytes were checked against their name and this cluster before (prepare.ts,
 *    validate.ts); a prefix that another cluster owns (beyond-pg.json) is refused.
 */
import { S3Client, S3Error } from "../s3/client.ts";
import type { ObjectStore } from "../s3/store.ts";
import { ArchiveError } from "./errors.ts";
import { sha256Hex } from "../util/crypto.ts";
import type { ArchiveConfig } from "./config.ts";
import type { Prepared } from "./prepare.ts";
import { decompress } from "./codec.ts";
import { parseSegment, SEGMENT_BYTES, walKind } from "./names.ts";
import { switchEndIn } from "./reader.ts";
import { WAL_MAGIC } from "./validate.ts";
import { historyName, type Lineage, parseHistory } from "./lineage.ts";
import { Layout, parseTarget } from "./target.ts";
import { credentialSourceFor } from "./credentials.ts";
import { openWalObject } from "./keys.ts";

export { ArchiveError };

/**
 * PURE: path-style addressing or not. `auto`: virtual-hosted on AWS (its newer regions refuse
 * path style) unless the bucket name has a dot (`a.b.s3.amazonaws.com` does not match AWS's
 * wildcard certificate), path style elsewhere (self-hosted stores rarely have per-bucket DNS).
 */
export function usePathStyle(
  style: "auto" | "path" | "virtual" | undefined,
  endpoint: string,
  bucket: string,
): boolean {
  if (style === "path") return true;
  if (style === "virtual") return false;
  return !new URL(endpoint).hostname.endsWith("amazonaws.com") || bucket.includes(".");
}

/** Which settings give the credentials of `cfg` (for the client's messages). */
function credentialsHint(cfg: ArchiveConfig): string {
  if (cfg.credentialsFile) return `BEYOND_PG_S3_CREDENTIALS_FILE (${cfg.credentialsFile})`;
  if (cfg.credentialsUrl) return "BEYOND_PG_S3_CREDENTIALS_URL and its token";
  return `BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY${
    cfg.sessionToken ? " (and BEYOND_PG_S3_SESSION_TOKEN)" : ""
  }`;
}

/**
 * Attempts per request for WAL (the archive service, `archive`, restore-wal): one retry absorbs
 * a lone 503 or reset; beyond that the service's own retry loop and postgres's take over, and a
 * hung or absent store shows as a failure (status, metrics) within about twice the idle timeout
 * instead of after the whole backoff. Backups, prune, verify and restore use the full budget.
 */
export const WAL_ATTEMPTS = 2;

export function clientFor(cfg: ArchiveConfig, o: { attempts?: number } = {}): S3Client {
  const bucket = parseTarget(cfg.target).bucket;
  const attempts = o.attempts === undefined
    ? cfg.attempts
    : Math.min(o.attempts, cfg.attempts ?? o.attempts);
  return new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    bucket,
    pathStyle: usePathStyle(cfg.urlStyle, cfg.endpoint, bucket),
    credentials: credentialSourceFor(cfg),
    caCerts: cfg.caCerts,
    ...(cfg.idleMs ? { idleMs: cfg.idleMs } : {}),
    ...(attempts ? { retry: { attempts } } : {}),
    ...(cfg.sse ? { sse: cfg.sse } : {}),
    ...(cfg.storageClass ? { storageClass: cfg.storageClass } : {}),
    hints: {
      endpoint: "BEYOND_PG_S3_ENDPOINT",
      bucket: "BEYOND_PG_ARCHIVE_TARGET",
      credentials: credentialsHint(cfg),
    },
  });
}

export function layoutFor(cfg: ArchiveConfig): Layout {
  return new Layout(parseTarget(cfg.target), cfg.major, cfg.sysid);
}

/**
 * The prefix's owner record (beyond-pg.json): which cluster archives here (system identifier,
 * major) and the timeline its primary is on — the lineage `restore --latest` follows and the
 * archive service stores (lineage.ts). Records written before lineage have no timeline: the
 * next primary to archive adds it.
 */
export interface OwnerRecord {
  system_identifier: string;
  major: number;
  created?: string;
  timeline?: number;
  updated?: string;
}

/** Who owns the target prefix (its beyond-pg.json), or undefined when nobody archived there. */
export async function readOwner(
  client: ObjectStore,
  target: string,
): Promise<OwnerRecord | undefined> {
  const layout = new Layout(parseTarget(target), 0, "");
  const obj = await client.get(layout.marker);
  if (!obj) return undefined;
  const doc = JSON.parse(new TextDecoder().decode(obj.body));
  return {
    ...doc,
    system_identifier: String(doc.system_identifier),
    major: Number(doc.major),
    ...(Number.isInteger(doc.timeline) ? { timeline: Number(doc.timeline) } : {}),
  };
}

/** Rewrite the owner record (the primary's timeline moved). */
export async function writeOwner(
  client: ObjectStore,
  target: string,
  rec: OwnerRecord,
): Promise<void> {
  const layout = new Layout(parseTarget(target), 0, "");
  await client.put(
    layout.marker,
    new TextEncoder().encode(JSON.stringify({ ...rec, updated: new Date().toISOString() }) + "\n"),
    { contentType: "application/json" },
  );
}

/** The lineage of `timeline` in the archive: its history file's entries (none for 1). */
export async function lineageOf(
  client: ObjectStore,
  cfg: ArchiveConfig,
  timeline: number,
): Promise<Lineage> {
  if (timeline <= 1) return { timeline, ancestors: [] };
  const obj = await client.get(layoutFor(cfg).wal(historyName(timeline)), 30_000);
  if (!obj) {
    throw new ArchiveError(
      `timeline ${timeline}'s history (${
        historyName(timeline)
      }) is not in ${cfg.target}; the archive is incomplete`,
      false,
    );
  }
  // Stored like every WAL file: compressed with the codec its metadata names (and sealed).
  const opened = await openWalObject(cfg, historyName(timeline), obj);
  const text = new TextDecoder().decode(
    await decompress(opened.metadata["beyond-codec"] ?? "none", opened.body),
  );
  return { timeline, ancestors: parseHistory(text) };
}

/** Claim the prefix for this cluster, or refuse if another cluster owns it. */
export interface OwnerCheck {
  /**
   * The store honours `If-None-Match: *` on PUT (probed on the marker itself: a second
   * conditional PUT must be refused). Then a WAL upload needs no HEAD first.
   */
  conditionalPut: boolean;
  /** The record as it is now (with a timeline). */
  record: OwnerRecord;
}

/**
 * Claim the prefix (or learn that another cluster owns it: thrown, not retried). A new record
 * (or one from before lineage) gets `localTimeline`, the timeline of the cluster archiving.
 */
export async function checkOwner(
  client: ObjectStore,
  cfg: ArchiveConfig,
  localTimeline = 1,
): Promise<OwnerCheck> {
  const layout = layoutFor(cfg);
  const mine = { system_identifier: cfg.sysid, major: cfg.major };
  let record = await readOwner(client, cfg.target);
  if (!record) {
    const fresh = { ...mine, created: new Date().toISOString(), timeline: localTimeline };
    const body = new TextEncoder().encode(JSON.stringify(fresh) + "\n");
    const put = await client.put(layout.marker, body, {
      ifAbsent: true,
      contentType: "application/json",
    });
    record = put !== "exists" ? fresh : await readOwner(client, cfg.target);
  }
  if (String(record!.system_identifier) !== cfg.sysid) {
    throw new ArchiveError(
      `${cfg.target} belongs to another cluster (system identifier ${
        record!.system_identifier
      }, PostgreSQL ${
        record!.major
      }); this one is ${cfg.sysid}: point BEYOND_PG_ARCHIVE_TARGET at its own prefix`,
      false,
    );
  }
  if (record!.timeline === undefined) {
    record = { ...record!, timeline: localTimeline };
    await writeOwner(client, cfg.target, record);
  }
  // Same bytes as stored: harmless even on a store that ignores the condition.
  const now = await client.get(layout.marker);
  const probe = await client.put(layout.marker, now!.body, {
    ifAbsent: true,
    contentType: "application/json",
  });
  return { conditionalPut: probe === "exists", record: record! };
}

export interface ArchiveResult {
  name: string;
  stored: boolean;
  /** Not stored on purpose (a branch's WAL): why. */
  skipped?: string;
  bytes: number;
  storedBytes: number;
}

/** Equal content (native SHA-256 of both: a byte loop is slow under --jitless). */
async function equalBytes(a: Uint8Array, b: Uint8Array): Promise<boolean> {
  return a.length === b.length && (await sha256Hex(a)) === (await sha256Hex(b));
}

/**
 * Two copies of segment `name` that differ only after the switch record both end in: the same
 * WAL. A standby promoted after its primary died while sending the switch's padding holds its
 * own bytes there (zeros, or a recycled file's); recovery skips from that record to the next
 * segment and never reads them.
 */
async function sameToSwitch(
  name: string,
  a: Uint8Array,
  b: Uint8Array,
  cfg: Pick<ArchiveConfig, "major" | "sysid">,
): Promise<boolean> {
  const id = parseSegment(name);
  const magic = WAL_MAGIC[cfg.major];
  if (!id || magic === undefined || a.length !== SEGMENT_BYTES || b.length !== SEGMENT_BYTES) {
    return false;
  }
  // One walk (record lengths and links, no CRCs: fast without a JIT): the bytes up to that
  // switch record's end are then compared whole, so the other copy has the same record there.
  const end = switchEndIn(a, id.number, {
    format: { magic, segmentBytes: SEGMENT_BYTES },
    timeline: id.timeline,
    sysid: BigInt(cfg.sysid),
    crc: false,
  });
  return end !== undefined && await equalBytes(a.subarray(0, end), b.subarray(0, end));
}

/**
 * Archive one prepared file (see prepare.ts). `local` gives the file's bytes again, for the
 * rare byte-for-byte comparison with an object already there.
 */
export async function archivePrepared(
  client: ObjectStore,
  cfg: ArchiveConfig,
  p: Prepared,
  local: () => Promise<Uint8Array>,
  o: Pick<OwnerCheck, "conditionalPut"> = { conditionalPut: false },
): Promise<ArchiveResult> {
  const { name } = p;
  const kind = walKind(name);
  if (!kind) throw new ArchiveError(`${JSON.stringify(name)} is not a WAL file name`, false);
  const key = layoutFor(cfg).wal(name);
  const different = (why: string) =>
    new ArchiveError(
      `${name} is already archived with different content (${why}); not overwriting it`,
      false,
    );
  /** Is the stored object this file? Byte for byte (a rare path: a retry, a second copy). */
  const same = async (): Promise<boolean> => {
    const head = await client.head(key);
    if (!head) return false;
    const storedSize = Number(head.metadata["beyond-size"] ?? NaN);
    if (storedSize !== p.size) throw different(`${storedSize} bytes stored, ${p.size} here`);
    const got = await client.get(key, undefined, { maxBytes: layoutFor(cfg).walObjectMaxBytes });
    if (!got) return false;
    const obj = await openWalObject(cfg, name, got).catch(() => {
      throw different("the stored copy does not decrypt with our keys");
    });
    let stored: Uint8Array;
    try {
      stored = await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
    } catch {
      throw different("the stored copy does not decompress");
    }
    const mine = await local();
    if (await equalBytes(stored, mine)) return true;
    if (kind === "segment" && await sameToSwitch(name, stored, mine, cfg)) return true;
    throw different("bytes differ");
  };
  try {
    // Without a trustworthy conditional PUT, look first: never overwrite.
    if (!o.conditionalPut && await same()) {
      return { name, stored: false, bytes: p.size, storedBytes: 0 };
    }
    const put = await client.put(key, p.body, {
      ifAbsent: true,
      ...(p.bodySha256 ? { payloadHash: p.bodySha256 } : {}),
      metadata: {
        "beyond-codec": p.codec,
        "beyond-size": String(p.size),
        ...(p.keyId ? { "beyond-key-id": p.keyId } : {}),
      },
    });
    if (put === "exists") {
      // Stored by someone else between our HEAD and PUT: fine if it is the same content.
      await same();
      return { name, stored: false, bytes: p.size, storedBytes: 0 };
    }
    return { name, stored: true, bytes: p.size, storedBytes: p.body.length };
  } catch (error) {
    if (error instanceof S3Error) throw new ArchiveError(error.message, error.transient, error);
    throw error;
  }
}
