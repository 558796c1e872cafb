/**
 * EFFECT: multipart uploads nobody will complete — a backup killed mid-way, a start whose answer
 * was lost and was sent again — keep their parts, billed, until aborted. `backups prune` and the
 * supervisor (daily) abort those started under the target's prefix more than a day ago (a
 * running backup is younger; a backup taking longer than a day would need a larger age).
 */
import type { S3Client } from "../s3/client.ts";
import type { ListedUpload } from "../s3/xml.ts";

/** A day: no backup of ours runs that long. */
export const ABANDONED_AFTER_MS = 86_400_000;

export interface OrphanResult {
  uploads: ListedUpload[];
  aborted: number;
}

/** Abort (or with `dryRun` only list) the uploads under `prefix` started before now − maxAge. */
export async function abortAbandonedUploads(
  client: S3Client,
  prefix: string,
  o: { maxAgeMs?: number; now?: Date; dryRun?: boolean } = {},
): Promise<OrphanResult> {
  const now = (o.now ?? new Date()).getTime();
  const maxAge = o.maxAgeMs ?? ABANDONED_AFTER_MS;
  const uploads = (await client.listMultipartUploads(prefix)).filter((u) =>
    now - u.initiated.getTime() >= maxAge
  );
  let aborted = 0;
  if (!o.dryRun) {
    for (const u of uploads) {
      await client.abortMultipart(u.key, u.uploadId);
      aborted++;
    }
  }
  return { uploads, aborted };
}
