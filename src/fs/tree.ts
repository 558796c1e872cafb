/**
 * EFFECT: the only place that changes files (a source test fails on a file-changing Deno call
 * anywhere else under src/). Every path belongs to a tree, and the tree says who may write it:
 *
 *   RootTree  a directory whose every component is owned by root and not writable by anyone
 *             else (checked when claimed): nobody else can put a link in it, so paths are used
 *             as they are. Our run dir, the archive's private state, the FIFOs.
 *   PgTree    a directory the postgres uid can write (the data root, PGDATA, the socket dir):
 *             every operation runs with postgres's file-system identity (identity.ts), so a
 *             link planted there gets us nothing postgres could not do itself.
 *
 * A path outside a tree's base is a programming error. Writes are atomic (temp file with
 * O_EXCL, fsync, rename, fsync of the directory) and only happen when the content differs.
 */
import { mkfifo } from "../../ffi/mod.ts";
import { asUser, type Owner } from "./identity.ts";
import { OperatorError } from "../util/errors.ts";

export type { Owner } from "./identity.ts";

function normalize(path: string): string {
  if (!path.startsWith("/") || path.split("/").includes("..")) {
    throw new Error(`not an absolute, normalized path: ${JSON.stringify(path)}`);
  }
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function parent(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function notFound(error: unknown): boolean {
  return error instanceof Deno.errors.NotFound;
}

export abstract class Tree {
  readonly base: string;

  constructor(base: string) {
    this.base = normalize(base);
  }

  /** Who the operations run as, for messages. */
  abstract get who(): string;

  /** Run `fn` (synchronous file calls only) with this tree's identity. */
  protected abstract run<T>(fn: () => T): T;

  /** `path`, checked to be this tree's base or inside it. */
  protected inside(path: string): string {
    const p = normalize(path);
    if (p !== this.base && !p.startsWith(this.base === "/" ? "/" : `${this.base}/`)) {
      throw new Error(`${p} is not inside ${this.base} (${this.who} tree)`);
    }
    return p;
  }

  /** Does the path exist (a link counts, it is not followed)? */
  exists(path: string): boolean {
    return this.stat(path) !== undefined;
  }

  /** lstat, or undefined when there is nothing there. */
  stat(path: string): Deno.FileInfo | undefined {
    const p = this.inside(path);
    return this.run(() => {
      try {
        return Deno.lstatSync(p);
      } catch (error) {
        if (notFound(error) || error instanceof Deno.errors.NotADirectory) return undefined;
        throw error;
      }
    });
  }

  readText(path: string): string | undefined {
    const p = this.inside(path);
    return this.run(() => {
      try {
        return Deno.readTextFileSync(p);
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    });
  }

  readBytes(path: string): Uint8Array | undefined {
    const p = this.inside(path);
    return this.run(() => {
      try {
        return Deno.readFileSync(p);
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    });
  }

  /** Where a symbolic link points (undefined when `path` is not a link). */
  readLink(path: string): string | undefined {
    const p = this.inside(path);
    return this.run(() => {
      try {
        return Deno.lstatSync(p).isSymlink ? Deno.readLinkSync(p) : undefined;
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    });
  }

  /** Entries of a directory ([] when it does not exist). */
  list(dir: string): Deno.DirEntry[] {
    const p = this.inside(dir);
    return this.run(() => {
      try {
        return [...Deno.readDirSync(p)];
      } catch (error) {
        if (notFound(error)) return [];
        throw error;
      }
    });
  }

  /**
   * mkdir -p below the base (the base itself must exist), then the mode of the last one
   * (unless `keepMode`: an existing directory is left as it is).
   */
  ensureDir(path: string, mode: number, o: { keepMode?: boolean } = {}): void {
    const p = this.inside(path);
    this.run(() => {
      const missing: string[] = [];
      for (let d = p; d !== this.base && d.length > this.base.length; d = parent(d)) {
        let info: Deno.FileInfo | undefined;
        try {
          info = Deno.lstatSync(d);
        } catch (error) {
          if (!notFound(error)) throw error;
        }
        if (info) {
          if (!info.isDirectory) throw new Error(`${d} is not a directory`);
          break;
        }
        missing.unshift(d);
      }
      for (const d of missing) Deno.mkdirSync(d, { mode });
      const info = Deno.lstatSync(p);
      if (!info.isDirectory) throw new Error(`${p} is not a directory`);
      if (o.keepMode && missing.length === 0) return;
      if (((info.mode ?? 0) & 0o7777) !== mode) Deno.chmodSync(p, mode);
    });
  }

  /** Write through a new temp file (O_EXCL), fsync, rename, fsync the directory. */
  writeAtomic(path: string, content: string | Uint8Array, mode: number): void {
    const p = this.inside(path);
    this.run(() => writeAtomicNow(p, content, mode));
  }

  /**
   * writeAtomic() of several files at once: every temp file written first (this tree's
   * identity, O_EXCL), then all fsynced together off the event loop (the disk writes them back
   * in one go: one file's fsync after another's costs each its own flush), then renamed, each
   * directory fsynced once. On a failure no temp file is left.
   */
  async writeAtomicAll(
    files: { path: string; content: Uint8Array }[],
    mode: number,
  ): Promise<void> {
    const open: { tmp: string; path: string; file: Deno.FsFile }[] = [];
    let renamed = 0;
    try {
      for (const f of files) {
        const path = this.inside(f.path);
        const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
        const file = this.run(() => Deno.openSync(tmp, { write: true, createNew: true, mode }));
        open.push({ tmp, path, file });
        writeAll(file, f.content);
      }
      await Promise.all(open.map((o) => o.file.sync()));
      for (const o of open) o.file.close();
      this.run(() => {
        for (const o of open) {
          Deno.chmodSync(o.tmp, mode); // umask may have narrowed it
          Deno.renameSync(o.tmp, o.path);
          renamed++;
        }
        for (const dir of new Set(open.map((o) => parent(o.path)))) syncDirNow(dir);
      });
    } catch (error) {
      this.run(() => {
        for (const o of open.slice(renamed)) {
          try {
            o.file.close();
          } catch { /* closed already */ }
          try {
            Deno.removeSync(o.tmp);
          } catch { /* gone */ }
        }
      });
      throw error;
    }
  }

  /** Returns true when the file was (re)written; an unchanged file only gets its mode fixed. */
  writeIfChanged(path: string, content: string, mode: number): boolean {
    const p = this.inside(path);
    return this.run(() => {
      let current: string | undefined;
      try {
        current = Deno.readTextFileSync(p);
      } catch (error) {
        if (!notFound(error)) throw error;
      }
      if (current === content) {
        const info = Deno.lstatSync(p);
        if (((info.mode ?? 0) & 0o777) !== mode) Deno.chmodSync(p, mode);
        return false;
      }
      writeAtomicNow(p, content, mode);
      return true;
    });
  }

  /** Create the file only if nothing is there (O_EXCL); true when created. */
  createOnce(path: string, content: string, mode: number): boolean {
    const p = this.inside(path);
    return this.run(() => {
      if (lexists(p)) return false;
      writeAtomicNow(p, content, mode);
      return true;
    });
  }

  /** Remove a file, link or directory tree; false when there was nothing. */
  remove(path: string, recursive = true): boolean {
    const p = this.inside(path);
    return this.run(() => {
      try {
        Deno.removeSync(p, { recursive });
        return true;
      } catch (error) {
        if (notFound(error)) return false;
        throw error;
      }
    });
  }

  rename(from: string, to: string): void {
    const [a, b] = [this.inside(from), this.inside(to)];
    this.run(() => Deno.renameSync(a, b));
  }

  /** A link at `path` pointing at `target` (the target is not checked). */
  symlink(target: string, path: string): void {
    const p = this.inside(path);
    this.run(() => Deno.symlinkSync(target, p));
  }

  /** Copy a file's bytes to a new file (O_EXCL: never through a link). */
  copyFile(from: string, to: string, mode = 0o600): void {
    const [a, b] = [this.inside(from), this.inside(to)];
    this.run(() => {
      const data = Deno.readFileSync(a);
      const f = Deno.openSync(b, { write: true, createNew: true, mode });
      try {
        writeAll(f, data);
        f.syncSync();
      } finally {
        f.close();
      }
    });
  }

  chmod(path: string, mode: number): void {
    const p = this.inside(path);
    this.run(() => Deno.chmodSync(p, mode));
  }

  /**
   * Open a file with this tree's identity (the permission check happens at open, so the file
   * may then be read or written asynchronously). `createNew` never follows a link.
   */
  open(path: string, options: Deno.OpenOptions): Deno.FsFile {
    const p = this.inside(path);
    return this.run(() => Deno.openSync(p, options));
  }

  /** fsync a directory (best effort: some filesystems refuse). */
  syncDir(dir: string): void {
    const p = this.inside(dir);
    this.run(() => syncDirNow(p));
  }
}

function lexists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function writeAll(file: Deno.FsFile, data: Uint8Array): void {
  let written = 0; // writeSync may write less than asked
  while (written < data.length) written += file.writeSync(data.subarray(written));
}

function syncDirNow(dir: string): void {
  try {
    const f = Deno.openSync(dir, { read: true });
    try {
      f.syncSync();
    } finally {
      f.close();
    }
  } catch { /* best effort */ }
}

function writeAtomicNow(path: string, content: string | Uint8Array, mode: number): void {
  const tmp = `${path}.tmp-${crypto.randomUUID().slice(0, 8)}`;
  const data = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
  try {
    writeAll(file, data);
    file.syncSync();
  } catch (error) {
    file.close();
    Deno.removeSync(tmp);
    throw error;
  }
  file.close();
  Deno.chmodSync(tmp, mode); // umask may have narrowed it
  Deno.renameSync(tmp, path);
  syncDirNow(parent(path));
}

/** Files the postgres uid can write: every operation runs as postgres (see identity.ts). */
export class PgTree extends Tree {
  readonly owner: Owner | undefined;

  /** `owner` undefined: we are postgres's user already (not root): no switch. */
  constructor(base: string, owner: Owner | undefined) {
    super(base);
    this.owner = owner;
  }

  get who(): string {
    return this.owner ? `uid ${this.owner.uid}` : "this user";
  }

  protected run<T>(fn: () => T): T {
    return asUser(this.owner, fn);
  }

  /** A tree for a directory inside this one, with the same identity. */
  sub(path: string): PgTree {
    return new PgTree(this.inside(path), this.owner);
  }
}

/** Who may own a directory of a root-owned chain: root, and ourselves when we are not root. */
function trustedOwner(uid: number | null): boolean {
  return uid === 0 || uid === Deno.uid();
}

/**
 * Why `dir` (and every directory above it) is not root-controlled, or undefined when it is:
 * each component must be owned by root (or us) and not writable by group or others, except a
 * sticky root-owned directory above it (/tmp).
 */
export function rootChainProblem(
  dir: string,
  o: { ancestorOnly?: boolean } = {},
): string | undefined {
  let real: string;
  try {
    real = Deno.realPathSync(dir);
  } catch (error) {
    return `${dir} cannot be resolved (${error instanceof Error ? error.message : error})`;
  }
  const parts = real.split("/").filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const d = "/" + parts.slice(0, i).join("/");
    const info = Deno.lstatSync(d);
    const mode = info.mode ?? 0;
    if (!info.isDirectory) return `${d} is not a directory`;
    if (!trustedOwner(info.uid)) return `${d} is owned by uid ${info.uid}`;
    // `ancestorOnly`: `dir` is above the tree (it will be made inside): sticky /tmp is fine.
    const last = i === parts.length && !o.ancestorOnly;
    const others = (mode & 0o002) !== 0;
    const group = (mode & 0o020) !== 0 && info.gid !== 0;
    const sticky = (mode & 0o1000) !== 0 && info.uid === 0;
    if ((others || group) && (last || !sticky)) {
      return `${d} is writable by ${others ? "others" : `group ${info.gid}`}`;
    }
  }
  return undefined;
}

/** Files only root (and this process) can change: paths are used as they are. */
export class RootTree extends Tree {
  /** Only through `check` (or `sub` of a checked tree): a RootTree is a proven claim. */
  private constructor(base: string) {
    super(base);
  }

  /**
   * The system itself (mount points, /etc/hostname, /proc/sys) for PID 1's init duties: a
   * tree at "/" taken as root's without a check. Only src/init/ may use it (a source test).
   */
  static system(): RootTree {
    return new RootTree("/");
  }

  get who(): string {
    return "root";
  }

  protected run<T>(fn: () => T): T {
    return fn();
  }

  /**
   * A root-controlled tree at `base`: the part of its path that exists now must be
   * root-controlled (nothing is created; see `create`). Throws an OperatorError naming the fix.
   * `what` names the setting it comes from.
   */
  static check(base: string, what: string): RootTree {
    const path = normalize(base);
    let d = path;
    while (!lexists(d)) d = parent(d);
    const problem = rootChainProblem(d, { ancestorOnly: d !== path });
    if (problem) throw unsafe(path, what, problem);
    const tree = new RootTree(path);
    tree.#what = what;
    return tree;
  }

  #what = "directory";

  /** Make the base and missing parents (mode `mode`), then check the whole chain again. */
  create(mode: number): void {
    const missing: string[] = [];
    for (let d = this.base; !lexists(d); d = parent(d)) missing.unshift(d);
    for (const m of missing) Deno.mkdirSync(m, { mode });
    const problem = rootChainProblem(this.base);
    if (problem) throw unsafe(this.base, this.#what, problem);
  }

  /** A root tree for a directory inside this one (no new check needed). */
  sub(path: string): RootTree {
    return new RootTree(this.inside(path));
  }

  /** A FIFO (named pipe) at `path`. */
  mkfifo(path: string, mode: number): void {
    mkfifo(this.inside(path), mode);
  }

  /**
   * Hand a file or directory in this tree to `owner` with `mode` (a socket or FIFO postgres
   * must open, a directory postgres writes). Safe by path: nobody else can swap it here.
   */
  give(path: string, owner: Owner | undefined, mode: number): void {
    const p = this.inside(path);
    const info = Deno.lstatSync(p);
    if (info.isSymlink) throw new Error(`${p} is a link; refusing to hand it over`);
    if (((info.mode ?? 0) & 0o7777) !== mode) Deno.chmodSync(p, mode);
    if (owner && (info.uid !== owner.uid || info.gid !== owner.gid)) {
      Deno.chownSync(p, owner.uid, owner.gid);
    }
  }
}

function unsafe(path: string, what: string, problem: string): OperatorError {
  return new OperatorError(
    `Cannot start: ${what}=${path} is not safe for root to use (${problem}); use a directory owned by root and not writable by group or others (chown root; chmod go-w)`,
    { exitCode: 2 },
  );
}
