/**
 * EFFECT: install files. Writes are atomic (temp file, fsync, rename, fsync of the directory)
 * and happen only when the content differs, so an unchanged boot touches nothing.
 */
import type { RunAs } from "./users.ts";

export interface WriteOptions {
  mode: number;
  /** chown to this uid/gid when set (we run as root and postgres must own it). */
  owner?: { uid: number; gid: number } | undefined;
}

export function syncDir(dir: string): void {
  try {
    const f = Deno.openSync(dir, { read: true });
    try {
      f.syncSync();
    } finally {
      f.close();
    }
  } catch { /* best effort: some filesystems refuse fsync on directories */ }
}

function readIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Returns true when the file was (re)written. */
export function writeIfChanged(path: string, content: string, options: WriteOptions): boolean {
  const current = readIfExists(path);
  if (current === content) {
    const info = Deno.statSync(path);
    if (((info.mode ?? 0) & 0o777) !== options.mode) Deno.chmodSync(path, options.mode);
    if (options.owner && (info.uid !== options.owner.uid || info.gid !== options.owner.gid)) {
      Deno.chownSync(path, options.owner.uid, options.owner.gid);
    }
    return false;
  }
  writeAtomic(path, content, options);
  return true;
}

export function writeAtomic(
  path: string,
  content: string | Uint8Array,
  options: WriteOptions,
): void {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const data = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode: options.mode });
  try {
    let written = 0; // writeSync may write less than asked
    while (written < data.length) written += file.writeSync(data.subarray(written));
    file.syncSync();
  } catch (error) {
    file.close();
    Deno.removeSync(tmp);
    throw error;
  }
  file.close();
  Deno.chmodSync(tmp, options.mode); // umask may have narrowed it
  if (options.owner) Deno.chownSync(tmp, options.owner.uid, options.owner.gid);
  Deno.renameSync(tmp, path);
  syncDir(dir);
}

export function ownerOf(runAs: RunAs): WriteOptions["owner"] {
  return runAs.switchTo;
}

/** mkdir -p, then ensure mode and owner of the last component. */
export function ensureDir(path: string, mode: number, owner?: WriteOptions["owner"]): void {
  Deno.mkdirSync(path, { recursive: true, mode });
  const info = Deno.statSync(path);
  if (((info.mode ?? 0) & 0o7777) !== mode) Deno.chmodSync(path, mode);
  if (owner && (info.uid !== owner.uid || info.gid !== owner.gid)) {
    Deno.chownSync(path, owner.uid, owner.gid);
  }
}

export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

export function removeIfExists(path: string): boolean {
  try {
    Deno.removeSync(path, { recursive: true });
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}
