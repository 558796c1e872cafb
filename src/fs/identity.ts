/**
 * EFFECT: run synchronous file operations as another user, in this process.
 *
 * The trust boundary: the app holds the postgres superuser password, so anything the postgres
 * uid can write is the app's to plant (`COPY … TO PROGRAM`), and we run as root. Inside a
 * directory postgres can write, every path may be a link to anything. Rather than proving each
 * path safe, we let the kernel check it as postgres: for the duration of `fn`, this thread's
 * file-system uid, gid and groups are postgres's (setfsuid/setfsgid, raw setgroups), which also
 * clears CAP_DAC_OVERRIDE, CAP_CHOWN and CAP_FOWNER from the effective set. A link to a
 * root-owned file then fails with EACCES, as it would for postgres itself; files come out owned
 * by postgres without a chown. Deno runs synchronous file calls on this (the JS) thread, so
 * only `*Sync` calls inside `fn` are covered: `fn` must not return a promise.
 */
import { getGroups, libcAvailable, setThreadFsIdentity } from "../../ffi/mod.ts";

export interface Owner {
  uid: number;
  gid: number;
}

let rootGroups: number[] | undefined;
let current: Owner | undefined;

function isRoot(): boolean {
  return Deno.uid() === 0;
}

/**
 * `fn()` with this thread's file-system identity switched to `owner`. Without an owner, or when
 * we are not root (then postgres runs as us and there is no boundary), `fn` runs as it is.
 */
export function asUser<T>(owner: Owner | undefined, fn: () => T): T {
  if (!owner || !isRoot() || (current && current.uid === owner.uid)) return fn();
  if (!libcAvailable()) {
    throw new Error("cannot act as the postgres user: FFI to libc is not available");
  }
  rootGroups ??= getGroups();
  if (!setThreadFsIdentity(owner.uid, owner.gid, [owner.gid])) {
    setThreadFsIdentity(0, 0, rootGroups);
    throw new Error(`cannot switch the file-system identity to uid ${owner.uid}`);
  }
  current = owner;
  let result: T;
  try {
    result = fn();
  } finally {
    current = undefined;
    restore();
  }
  if (result instanceof Promise) {
    throw new Error("asUser: fn returned a promise; only synchronous file calls are covered");
  }
  return result;
}

function restore(): void {
  if (!setThreadFsIdentity(0, 0, rootGroups ?? [])) {
    // Never carry on with a half-restored identity: root's own work would fail in odd ways,
    // and a supervisor that cannot act as root is of no use. Exit loudly (PID 1: power off).
    console.error("beyond-pg: cannot restore the file-system identity to root; exiting");
    Deno.exit(70);
  }
}

/** The identity file operations run as right now (tests). */
export function actingAs(): Owner | undefined {
  return current;
}
