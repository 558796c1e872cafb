/**
 * EFFECT: fetch one archived file: undefined when it is not in the archive (restore_command
 * then exits 1: "no such file", which is how recovery learns where archived WAL ends), else the
 * decompressed bytes, verified against the SHA-256 stored with them.
 */
import type { S3Client } from "../s3/client.ts";
import { S3Error } from "../s3/client.ts";
import { ArchiveError, layoutFor } from "./archive.ts";
import { decompress } from "./codec.ts";
import type { ArchiveConfig } from "./config.ts";
import { walKind } from "./names.ts";
import { errorMessage } from "../util/errors.ts";

export async function fetchWal(
  client: S3Client,
  cfg: ArchiveConfig,
  name: string,
): Promise<Uint8Array | undefined> {
  if (!walKind(name)) {
    throw new ArchiveError(`${JSON.stringify(name)} is not a WAL file name`, false);
  }
  let obj;
  try {
    obj = await client.get(layoutFor(cfg).wal(name), 120_000);
  } catch (error) {
    if (error instanceof S3Error) throw new ArchiveError(error.message, error.transient, error);
    throw error;
  }
  if (!obj) return undefined;
  let data: Uint8Array;
  try {
    data = await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
  } catch (error) {
    throw new ArchiveError(
      `${name} in the archive is corrupt (cannot decompress: ${errorMessage(error)})`,
      false,
      error,
    );
  }
  // zstd and gzip verify their own checksums while decompressing; the size covers the rest.
  const want = obj.metadata["beyond-size"];
  if (want !== undefined && Number(want) !== data.length) {
    throw new ArchiveError(
      `${name} in the archive is corrupt (${data.length} bytes, ${want} expected); restore it from another copy`,
      false,
    );
  }
  return data;
}

/** Write `data` to `path` through a temporary file and a rename; a full disk is named. */
export function writeWalFile(path: string, data: Uint8Array): void {
  const tmp = `${path}.beyond-tmp`;
  try {
    Deno.writeFileSync(tmp, data, { mode: 0o600 });
    Deno.renameSync(tmp, path);
  } catch (error) {
    try {
      Deno.removeSync(tmp);
    } catch { /* not there */ }
    const dir = path.slice(0, path.lastIndexOf("/")) || ".";
    if (error instanceof Error && /No space left|ENOSPC|os error 28/i.test(error.message)) {
      throw new ArchiveError(
        `no space left on the volume of ${dir} while restoring ${
          path.split("/").pop()
        }; free space or grow the volume`,
        false,
        error,
      );
    }
    throw error;
  }
}
