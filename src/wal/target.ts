/** PURE: the archive target (s3://bucket/prefix) and where each object lives in it. */
import { readArchiveTarget } from "../settings/archive_target.ts";

export interface Target {
  bucket: string;
  /** Without leading or trailing slashes ("" for the bucket root). */
  prefix: string;
}

/**
 * A stored config's target (settings validated it when it was written), read with the
 * settings' own grammar: there is only one.
 */
export function parseTarget(url: string): Target {
  const target = readArchiveTarget(url);
  if (!target) throw new Error(`not an s3://bucket/prefix target: ${url}`);
  return { bucket: target.bucket, prefix: target.prefix };
}

/** beyond-pg's clusters use 16 MiB segments (initdb's default). */
export const WAL_SEGMENT_BYTES = 16 << 20;

/**
 * The largest WAL object we read back (and what one may decompress to): a segment, plus room
 * for a codec's worst-case growth on incompressible data (zstd and gzip add well under 1%).
 */
export const WAL_OBJECT_MAX_BYTES = WAL_SEGMENT_BYTES + (1 << 20);

/**
 * Object layout (ARCHITECTURE.md, "Archive layout"):
 *   <prefix>/beyond-pg.json                          which cluster owns this prefix
 *   <prefix>/pg<major>-<sysid>/wal/<%f>              WAL, named exactly as postgres names it
 *   <prefix>/pg<major>-<sysid>/basebackups/<label>/base.tar[.zst]
 *   <prefix>/pg<major>-<sysid>/basebackups/<label>/manifest.json
 */
export class Layout {
  readonly target: Target;
  readonly major: number;
  readonly sysid: string;

  constructor(target: Target, major: number, sysid: string) {
    this.target = target;
    this.major = major;
    this.sysid = sysid;
  }

  #join(...parts: string[]): string {
    return [this.target.prefix, ...parts].filter(Boolean).join("/");
  }

  get marker(): string {
    return this.#join("beyond-pg.json");
  }

  get clusterDir(): string {
    return this.#join(`pg${this.major}-${this.sysid}`);
  }

  wal(name: string): string {
    return `${this.clusterDir}/wal/${name}`;
  }

  /** The most bytes a stored WAL object may have (reads stop there). */
  get walObjectMaxBytes(): number {
    return WAL_OBJECT_MAX_BYTES;
  }

  get walPrefix(): string {
    return `${this.clusterDir}/wal/`;
  }

  get backupsPrefix(): string {
    return `${this.clusterDir}/basebackups/`;
  }

  backup(label: string, file: string): string {
    return `${this.clusterDir}/basebackups/${label}/${file}`;
  }
}
