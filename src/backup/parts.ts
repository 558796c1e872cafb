/**
 * PURE: how a base backup is cut into multipart parts. S3 allows at most 10,000 parts of at most
 * 5 GiB (5 MiB at least, but the last), 5 TiB an object: fixed 16 MiB parts stopped at ~156 GiB,
 * at part 10,001, hours into the upload. So the part size is chosen before starting from the
 * size expected (the databases' size, uncompressed: compression only shrinks it, and a margin
 * covers growth during the backup), to land near 9,000 parts at most; a backup that would not
 * fit in one object is refused before anything starts. Should the data still outgrow the plan,
 * the parts after 9,000 double in size (S3 takes parts of different sizes). Parts in flight
 * are bounded by memory, not just by count.
 */

export const MiB = 1 << 20;
export const MAX_PARTS = 10_000;
export const MAX_PART_BYTES = 5 * 1024 * MiB;
export const MAX_OBJECT_BYTES = 5 * 1024 * 1024 * MiB;
/** Aim here, leaving 1,000 parts for growth during the backup. */
const PLANNED_PARTS = 9_000;
/** What a backup may grow by while it runs (WAL fetched into the tar, new data). */
const GROWTH = 1.2;

export interface PartPlan {
  partBytes: number;
  /** Parts uploaded at once (buffers in memory: parallel × partBytes ≤ memoryBytes). */
  parallel: number;
}

export interface PlanOptions {
  /** The smallest part (default 16 MiB). */
  minPartBytes?: number;
  /** Parts wanted at once (default 4). */
  parallel?: number;
  /** Memory for part buffers (default 256 MiB). */
  memoryBytes?: number;
}

/** The plan, or a one-line reason the backup cannot be one S3 object. */
export function planParts(expectedBytes: number, o: PlanOptions = {}): PartPlan | string {
  const minPart = o.minPartBytes ?? 16 * MiB;
  const want = expectedBytes * GROWTH;
  if (want > MAX_OBJECT_BYTES) {
    return `the databases hold ${
      (expectedBytes / 2 ** 40).toFixed(2)
    } TiB; with room for growth the backup could exceed S3's limit of 5 TiB per object; back up a smaller cluster, or use another tool for this one`;
  }
  const perPart = Math.ceil(want / PLANNED_PARTS / MiB) * MiB;
  const partBytes = Math.min(MAX_PART_BYTES, Math.max(minPart, perPart));
  const memory = o.memoryBytes ?? 256 * MiB;
  const parallel = Math.max(1, Math.min(o.parallel ?? 4, Math.floor(memory / partBytes)));
  return { partBytes, parallel };
}

/**
 * The size of part `n` (1-based), given the planned size: doubled for each 100 parts past 9,000
 * (capped at 5 GiB), so a backup far larger than planned still ends within 10,000 parts.
 * Past part 10,000 there is no room: undefined (the caller stops with a clear error).
 */
export function partSize(n: number, planned: number): number | undefined {
  if (n > MAX_PARTS) return undefined;
  if (n <= PLANNED_PARTS) return planned;
  const doublings = Math.ceil((n - PLANNED_PARTS) / 100);
  return Math.min(MAX_PART_BYTES, planned * 2 ** doublings);
}
