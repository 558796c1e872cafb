/**
 * EFFECT: fetch one archived file: undefined when it is not in the archive (restore_command
 * then exits 1: "no such file", which is how recovery learns where archived WAL ends), else the
 * decompressed bytes, verified by the codec's own checksum and the size stored with them.
 */
import type { ObjectStore, StoredObject } from "../s3/store.ts";
import { S3Error } from "../s3/client.ts";
import { layoutFor } from "./archive.ts";
import { ArchiveError } from "./errors.ts";
import type { Tree } from "../fs/tree.ts";
import { decompress } from "./codec.ts";
import type { ArchiveConfig } from "./config.ts";
import { walKind } from "./names.ts";
import { errorMessage } from "../util/errors.ts";
import { openWalObject } from "./keys.ts";

export type WalObject = StoredObject;

/** The stored object for `name`, or undefined when the archive does not have it. */
export async function getWalObject(
  client: ObjectStore,
  cfg: ArchiveConfig,
  name: string,
): Promise<WalObject | undefined> {
  try {
    const layout = layoutFor(cfg);
    const obj = await client.get(layout.wal(name), undefined, {
      maxBytes: layout.walObjectMaxBytes,
    });
    // Sealed (client-side encryption): opened here, so what follows sees what was compressed.
    return obj && await openWalObject(cfg, name, obj);
  } catch (error) {
    if (error instanceof S3Error) throw new ArchiveError(error.message, error.transient, error);
    throw error;
  }
}

/** An archived file that cannot be what was stored: never retried. */
export function corruptWal(name: string, why: string, cause?: unknown): ArchiveError {
  return new ArchiveError(
    `${name} in the archive is corrupt (${why}); restore it from another copy`,
    false,
    cause,
  );
}

/**
 * zstd and gzip verify their own checksums while decompressing; the size kept in metadata
 * (`beyond-size`) covers the rest.
 */
export function checkWalSize(name: string, obj: WalObject, size: number): void {
  const want = obj.metadata["beyond-size"];
  if (want !== undefined && Number(want) !== size) {
    throw corruptWal(name, `${size} bytes, ${want} expected`);
  }
}

/** Decompress a stored object in this process and check it. */
export async function decodeWal(name: string, obj: WalObject): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    data = await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
  } catch (error) {
    throw corruptWal(name, `cannot decompress: ${errorMessage(error)}`, error);
  }
  checkWalSize(name, obj, data.length);
  return data;
}

export async function fetchWal(
  client: ObjectStore,
  cfg: ArchiveConfig,
  name: string,
): Promise<Uint8Array | undefined> {
  if (!walKind(name)) {
    throw new ArchiveError(`${JSON.stringify(name)} is not a WAL file name`, false);
  }
  const obj = await getWalObject(client, cfg, name);
  return obj && await decodeWal(name, obj);
}

/** Write `data` to `path` through a temporary file and a rename; a full disk is named. */
export function writeWalFile(tree: Tree, path: string, data: Uint8Array): void {
  try {
    tree.writeAtomic(path, data, 0o600);
  } catch (error) {
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
