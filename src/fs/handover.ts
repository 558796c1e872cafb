/**
 * EFFECT: the two places where root must touch a path postgres could have replaced, done on a
 * file descriptor opened with O_NOFOLLOW instead of by path:
 *
 *  - handing a directory to postgres (the data root on a fresh volume, the socket dir) whose
 *    parent postgres can write (Debian makes /var/lib/postgresql postgres's): fchown/fchmod
 *    on the open directory, never chown of a path that may by then be a link;
 *  - reading a file postgres produced (a WAL segment to archive): opened as postgres, without
 *    following a link, checked to be a regular file postgres owns, then read through
 *    /proc/self/fd, which is the very file that was checked.
 */
import {
  closeFd,
  ErrnoError,
  fchmod,
  fchown,
  libcAvailable,
  O_CLOEXEC,
  O_DIRECTORY,
  O_NOFOLLOW,
  O_NONBLOCK,
  O_RDONLY,
  openFd,
} from "../../ffi/mod.ts";
import { asUser, type Owner } from "./identity.ts";
import { rootChainProblem } from "./tree.ts";
import { OperatorError } from "../util/errors.ts";

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function isRoot(): boolean {
  return Deno.uid() === 0;
}

function lexists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Make `dir` a directory owned by `owner` with `mode`. Its parent may be writable by postgres
 * (then the directory is made as postgres), but the parent itself must not be replaceable:
 * the parent's parent chain must be root-controlled. `what` names the setting.
 */
export function ensureOwnedDir(
  dir: string,
  owner: Owner | undefined,
  mode: number,
  what: string,
): void {
  if (!owner || !isRoot()) {
    Deno.mkdirSync(dir, { recursive: true, mode });
    if (((Deno.statSync(dir).mode ?? 0) & 0o7777) !== mode) Deno.chmodSync(dir, mode);
    return;
  }
  const up = parentOf(dir);
  if (!lexists(up)) Deno.mkdirSync(up, { recursive: true, mode: 0o755 });
  const parentSafe = rootChainProblem(up, { ancestorOnly: true }) === undefined;
  if (!parentSafe) {
    const above = rootChainProblem(parentOf(up), { ancestorOnly: true });
    if (above) {
      throw new OperatorError(
        `Cannot start: ${what}=${dir} is not safe for root to use (${above}); put it under a directory only root can change`,
        { exitCode: 2 },
      );
    }
  }
  if (!lexists(dir)) {
    // In a parent postgres can write, postgres makes it (we cannot be tricked into a chown).
    if (parentSafe) Deno.mkdirSync(dir, { mode });
    else asUser(owner, () => Deno.mkdirSync(dir, { mode }));
  }
  let fd: number;
  try {
    fd = openFd(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  } catch (error) {
    const why = error instanceof ErrnoError && (error.code === "ELOOP" || error.code === "ENOTDIR")
      ? "it is a link or not a directory"
      : String(error);
    throw new OperatorError(
      `Cannot start: ${what}=${dir} cannot be used (${why}); make it a plain directory`,
      { exitCode: 2, cause: error },
    );
  }
  try {
    const info = Deno.statSync(`/proc/self/fd/${fd}`);
    if (info.uid !== owner.uid || info.gid !== owner.gid) fchown(fd, owner.uid, owner.gid);
    if (((info.mode ?? 0) & 0o7777) !== mode) fchmod(fd, mode);
  } finally {
    closeFd(fd);
  }
}

export class UnsafeFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsafeFileError";
  }
}

/**
 * open(2) as `owner`, read-only, without following a link in the last component; O_NONBLOCK:
 * a FIFO planted under the name must not block the open. A link and a missing file are errors
 * of their own.
 */
function openNoFollow(path: string, owner: Owner | undefined): number {
  try {
    return asUser(owner, () => openFd(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  } catch (error) {
    if (error instanceof ErrnoError && error.code === "ELOOP") {
      throw new UnsafeFileError(`${path} is a link; refusing to read it`);
    }
    if (error instanceof ErrnoError && error.code === "ENOENT") {
      throw new Deno.errors.NotFound(`${path} does not exist`);
    }
    throw error;
  }
}

/**
 * `path`, a file postgres produced, opened for reading as `owner` without following a link
 * (O_NOFOLLOW on the last component; the kernel checks the rest as postgres; the open file is
 * reached through /proc/self/fd), which must be a regular file owned by `owner`, at most
 * `maxBytes` long. Without FFI (a command whose profile has none): lstat, open, then the opened
 * file must be the very inode lstat saw — a link swapped in between is caught by the inode.
 */
async function openOwned(
  path: string,
  owner: Owner | undefined,
  maxBytes: number,
): Promise<{ file: Deno.FsFile; size: number }> {
  const wantUid = owner?.uid ?? Deno.uid();
  let file: Deno.FsFile;
  let before: Deno.FileInfo | undefined;
  if (libcAvailable()) {
    const fd = openNoFollow(path, owner);
    try {
      // Checked before it is opened again: a FIFO would block that open.
      if (!Deno.statSync(`/proc/self/fd/${fd}`).isFile) {
        throw new UnsafeFileError(`${path} is not a regular file; refusing it`);
      }
      file = await Deno.open(`/proc/self/fd/${fd}`, { read: true });
    } finally {
      closeFd(fd);
    }
  } else {
    before = Deno.lstatSync(path);
    if (before.isSymlink) throw new UnsafeFileError(`${path} is a link; refusing to read it`);
    if (!before.isFile) throw new UnsafeFileError(`${path} is not a regular file; refusing it`);
    file = await Deno.open(path, { read: true });
  }
  try {
    const info = await file.stat();
    if (before && (info.ino !== before.ino || info.dev !== before.dev)) {
      throw new UnsafeFileError(`${path} changed while it was opened; refusing it`);
    }
    if (!info.isFile) throw new UnsafeFileError(`${path} is not a regular file; refusing it`);
    if (info.uid !== wantUid) {
      throw new UnsafeFileError(`${path} is owned by uid ${info.uid}, not ${wantUid}; refusing it`);
    }
    if (info.size > maxBytes) {
      throw new UnsafeFileError(`${path} is ${info.size} bytes, more than ${maxBytes}`);
    }
    return { file, size: info.size };
  } catch (error) {
    file.close();
    throw error;
  }
}

/** The bytes of `path`, a file postgres produced (openOwned's checks). Read off the event loop. */
export async function readOwnedFile(
  path: string,
  owner: Owner | undefined,
  maxBytes: number,
): Promise<Uint8Array> {
  const { file, size } = await openOwned(path, owner, maxBytes);
  try {
    const out = new Uint8Array(size + 1);
    let got = 0;
    for (;;) {
      const n = await file.read(out.subarray(got));
      if (n === null) break;
      got += n;
      if (got > size) throw new UnsafeFileError(`${path} grew while it was read; refusing it`);
    }
    if (got !== size) throw new UnsafeFileError(`${path} shrank while it was read; refusing it`);
    return out.subarray(0, got);
  } finally {
    file.close();
  }
}

/**
 * The first `bytes` of `path` and its size, with readOwnedFile's checks: for a tool that then
 * reads the rest by itself, as `owner` (wal/prepare.ts).
 */
export async function readOwnedHead(
  path: string,
  owner: Owner | undefined,
  o: { maxBytes: number; bytes: number },
): Promise<{ head: Uint8Array; size: number }> {
  const { file, size } = await openOwned(path, owner, o.maxBytes);
  try {
    const head = new Uint8Array(Math.min(o.bytes, size));
    let got = 0;
    while (got < head.length) {
      const n = await file.read(head.subarray(got));
      if (n === null) throw new UnsafeFileError(`${path} shrank while it was read; refusing it`);
      got += n;
    }
    return { head, size };
  } finally {
    file.close();
  }
}
