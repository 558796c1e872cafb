/**
 * EFFECT: the archive_command contract, for one file (used by `beyond-pg archive` on its own
 * and by the supervisor's uploader):
 *  - 0 only once the object is fully stored (S3 PUT is all-or-nothing, and the store checks
 *    the body against the SHA-256 signed into the request) — never a visible partial object;
 *  - already stored with the same content (SHA-256 of the uncompressed bytes, in metadata) → 0;
 *    different content → an error, nothing overwritten (PUT If-None-Match: *), for every kind
 *    of file, `.history` included;
 *  - the bytes were checked against their name and this cluster before (prepare.ts,
 *    validate.ts); a prefix that another cluster owns (beyond-pg.json) is refused.
 */
import { S3Client, S3Error } from "../s3/client.ts";
import { ArchiveError } from "./errors.ts";
import { sha256Hex } from "../util/crypto.ts";
import type { ArchiveConfig } from "./config.ts";
import type { Prepared } from "./prepare.ts";
import { decompress } from "./codec.ts";
import { walKind } from "./names.ts";
import { Layout, parseTarget } from "./target.ts";

export { ArchiveError };

export function clientFor(cfg: ArchiveConfig): S3Client {
  const endpoint = new URL(cfg.endpoint);
  return new S3Client({
    endpoint: cfg.endpoint,
    region: cfg.region,
    bucket: parseTarget(cfg.target).bucket,
    pathStyle: !endpoint.hostname.endsWith("amazonaws.com"),
    credentials: { accessKeyId: cfg.accessKeyId, secretAccessKey: cfg.secretAccessKey },
    caCerts: cfg.caCerts,
  });
}

export function layoutFor(cfg: ArchiveConfig): Layout {
  return new Layout(parseTarget(cfg.target), cfg.major, cfg.sysid);
}

/** Who owns the target prefix (its beyond-pg.json), or undefined when nobody archived there. */
export async function readOwner(
  client: S3Client,
  target: string,
): Promise<{ system_identifier: string; major: number } | undefined> {
  const layout = new Layout(parseTarget(target), 0, "");
  const obj = await client.get(layout.marker, 30_000);
  if (!obj) return undefined;
  const doc = JSON.parse(new TextDecoder().decode(obj.body));
  return { system_identifier: String(doc.system_identifier), major: Number(doc.major) };
}

/** Claim the prefix for this cluster, or refuse if another cluster owns it. */
export interface OwnerCheck {
  /**
   * The store honours `If-None-Match: *` on PUT (probed on the marker itself: a second
   * conditional PUT must be refused). Then a WAL upload needs no HEAD first.
   */
  conditionalPut: boolean;
}

export async function checkOwner(client: S3Client, cfg: ArchiveConfig): Promise<OwnerCheck> {
  const layout = layoutFor(cfg);
  const mine = { system_identifier: cfg.sysid, major: cfg.major };
  let owner = await client.get(layout.marker, 30_000);
  if (!owner) {
    const body = new TextEncoder().encode(
      JSON.stringify({ ...mine, created: new Date().toISOString() }) + "\n",
    );
    const put = await client.put(layout.marker, body, {
      ifAbsent: true,
      contentType: "application/json",
    });
    if (put !== "exists") owner = { body, metadata: {} };
    else owner = await client.get(layout.marker, 30_000);
  }
  const doc = JSON.parse(new TextDecoder().decode(owner!.body)) as {
    system_identifier?: string;
    major?: number;
  };
  if (String(doc.system_identifier) !== cfg.sysid) {
    throw new ArchiveError(
      `${cfg.target} belongs to another cluster (system identifier ${doc.system_identifier}, PostgreSQL ${doc.major}); this one is ${cfg.sysid}: point BEYOND_PG_ARCHIVE_TARGET at its own prefix`,
      false,
    );
  }
  // Same bytes as stored: harmless even on a store that ignores the condition.
  const probe = await client.put(layout.marker, owner!.body, {
    ifAbsent: true,
    contentType: "application/json",
  });
  return { conditionalPut: probe === "exists" };
}

export interface ArchiveResult {
  name: string;
  stored: boolean;
  bytes: number;
  storedBytes: number;
}

/** Equal content (native SHA-256 of both: a byte loop is slow under --jitless). */
async function equalBytes(a: Uint8Array, b: Uint8Array): Promise<boolean> {
  return a.length === b.length && (await sha256Hex(a)) === (await sha256Hex(b));
}

/**
 * Archive one prepared file (see prepare.ts). `local` gives the file's bytes again, for the
 * rare byte-for-byte comparison with an object already there.
 */
export async function archivePrepared(
  client: S3Client,
  cfg: ArchiveConfig,
  p: Prepared,
  local: () => Promise<Uint8Array>,
  o: OwnerCheck = { conditionalPut: false },
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
    const obj = await client.get(key, undefined, { maxBytes: layoutFor(cfg).walObjectMaxBytes });
    if (!obj) return false;
    let stored: Uint8Array;
    try {
      stored = await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
    } catch {
      throw different("the stored copy does not decompress");
    }
    if (!(await equalBytes(stored, await local()))) throw different("bytes differ");
    return true;
  };
  try {
    // Without a trustworthy conditional PUT, look first: never overwrite.
    if (!o.conditionalPut && await same()) {
      return { name, stored: false, bytes: p.size, storedBytes: 0 };
    }
    const put = await client.put(key, p.body, {
      ifAbsent: true,
      payloadHash: p.bodySha256,
      metadata: {
        "beyond-codec": p.codec,
        "beyond-size": String(p.size),
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
