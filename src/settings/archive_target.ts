/**
 * PURE: the one grammar of an archive target, `s3://bucket[/prefix]`. Settings parse
 * BEYOND_PG_ARCHIVE_TARGET with it; wal/target.ts reads back a stored config's target with it.
 */

export interface ArchiveTarget {
  /** As given (printed in messages, recorded in the volume marker). */
  url: string;
  /** An S3 bucket name: 3 to 63 of a-z, 0-9, dot and dash, a letter or digit at each end. */
  bucket: string;
  /** Without leading or trailing slashes ("" for the bucket root). */
  prefix: string;
}

const grammar = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/;

/** The target, or undefined when `url` is not `s3://bucket[/prefix]`. */
export function readArchiveTarget(url: string): ArchiveTarget | undefined {
  const m = url.match(grammar);
  if (!m) return undefined;
  return { url, bucket: m[1]!, prefix: (m[2] ?? "").replace(/^\/+|\/+$/g, "") };
}
