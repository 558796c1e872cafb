/**
 * The only place that dlopens libc (libcrypto.ts is the other library). Typed wrappers over libc: each turns -1 + errno into
 * an ErrnoError naming the call and the errno (e.g. "mount /proc failed: EBUSY").
 * errno is read on the calling thread right after the call, so only `poll` runs off-thread
 * (its errno is not needed: a failed poll is retried by the caller).
 */
import { ErrnoError } from "./errno.ts";
import { symbols } from "./symbols.ts";

type Symbols = Deno.DynamicLibrary<typeof symbols>["symbols"];
type Name = keyof typeof symbols;

/**
 * Each symbol is bound on its first call (~0.2 ms each, against ~6.5 ms for all of them at
 * once): the wake path before postgres starts needs only the identity calls. errno's symbol is
 * bound before any other, so a failed call's errno is never read after a dlopen.
 */
const bound = {} as Symbols;
/** Held for the life of the process (a library object that is collected may be unloaded). */
const libraries: Deno.DynamicLibrary<Deno.ForeignLibraryInterface>[] = [];
for (const name of Object.keys(symbols) as Name[]) {
  Object.defineProperty(bound, name, {
    configurable: true,
    enumerable: true,
    get() {
      if (name !== "__errno_location") void bound.__errno_location;
      const lib = Deno.dlopen(
        "libc.so.6",
        { [name]: symbols[name] } as Deno.ForeignLibraryInterface,
      );
      libraries.push(lib);
      const fn = lib.symbols[name];
      Object.defineProperty(bound, name, { value: fn, enumerable: true });
      return fn;
    },
  });
}

function libc(): Symbols {
  return bound;
}

/**
 * Whether FFI to libc is usable here (permission and library present). It binds the identity
 * calls too, so a switch of identity cannot fail halfway on a symbol that will not bind.
 */
export function libcAvailable(): boolean {
  try {
    const c = libc();
    void [c.__errno_location, c.syscall, c.setfsuid, c.setfsgid, c.getgroups];
    return true;
  } catch {
    return false;
  }
}

export function errno(): number {
  const p = libc().__errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32();
}

/** -1 → ErrnoError; anything else is returned. */
export function unwrap(ret: number | bigint, call: string, detail?: string): number {
  const n = Number(ret);
  if (n === -1) throw new ErrnoError(call, errno(), detail);
  return n;
}

export function cstr(s: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(s);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}

// ---- process and system ---------------------------------------------------------------

export const WNOHANG = 1;

/** waitpid(pid, WNOHANG): [pid, status] or undefined when nothing is ready / no child. */
export function waitpidNoHang(pid: number): { pid: number; status: number } | undefined {
  const status = new Int32Array(1);
  const r = libc().waitpid(pid, new Uint8Array(status.buffer), WNOHANG);
  if (r === -1) {
    const e = errno();
    if (e === 10) return undefined; // ECHILD: no such child
    throw new ErrnoError("waitpid", e);
  }
  return r === 0 ? undefined : { pid: r, status: status[0]! };
}

export function kill(pid: number, sig: number): void {
  unwrap(libc().kill(pid, sig), "kill", String(pid));
}

export const RLIMIT_NOFILE = 7;

/** A resource limit; RLIM_INFINITY reads as Infinity. */
export interface Rlimit {
  soft: number;
  hard: number;
}

const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

export function getrlimit(resource: number): Rlimit {
  const buf = new BigUint64Array(2); // struct rlimit { rlim_t rlim_cur, rlim_max; }
  unwrap(libc().getrlimit(resource, new Uint8Array(buf.buffer)), "getrlimit", String(resource));
  const read = (v: bigint) => (v === RLIM_INFINITY ? Infinity : Number(v));
  return { soft: read(buf[0]!), hard: read(buf[1]!) };
}

/** setrlimit(2); raising `hard` needs CAP_SYS_RESOURCE (EPERM otherwise). */
export function setrlimit(resource: number, limit: Rlimit): void {
  const write = (v: number) => (v === Infinity ? RLIM_INFINITY : BigInt(v));
  const buf = new BigUint64Array([write(limit.soft), write(limit.hard)]);
  unwrap(
    libc().setrlimit(resource, new Uint8Array(buf.buffer)),
    "setrlimit",
    `${resource} ${limit.soft}:${limit.hard}`,
  );
}

export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MS_NOEXEC = 8;
export const MS_RDONLY = 1;
export const MS_REMOUNT = 32;
export const MS_RELATIME = 1 << 21;
export const MNT_DETACH = 2;

export function mount(
  source: string,
  target: string,
  fstype: string,
  flags: number,
  data = "",
): void {
  unwrap(
    libc().mount(cstr(source), cstr(target), cstr(fstype), BigInt(flags), cstr(data)),
    "mount",
    target,
  );
}

export function umount(target: string, flags = 0): void {
  unwrap(libc().umount2(cstr(target), flags), "umount", target);
}

export const RB_POWER_OFF = 0x4321fedc;
export const RB_AUTOBOOT = 0x01234567;
export function reboot(cmd: number): void {
  unwrap(libc().reboot(cmd), "reboot");
}

export function sync(): void {
  libc().sync();
}

export function sethostname(name: string): void {
  const bytes = new TextEncoder().encode(name);
  unwrap(libc().sethostname(bytes, BigInt(bytes.length)), "sethostname", name);
}

export function swapon(path: string): void {
  unwrap(libc().swapon(cstr(path), 0), "swapon", path);
}

export function getpid(): number {
  return libc().getpid();
}

// ---- sockets (AF_VSOCK in the VM; AF_UNIX exercises the same code in tests) ------------

export const AF_UNIX = 1;
export const AF_VSOCK = 40;
const SOCK_STREAM = 1;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
export const VMADDR_CID_ANY = 0xffffffff;
export const VMADDR_CID_LOCAL = 1;
export const VMADDR_CID_HOST = 2;

export type SockAddr = { family: "vsock"; cid: number; port: number } | {
  family: "unix";
  path: string;
};

function encodeAddr(addr: SockAddr): Uint8Array<ArrayBuffer> {
  if (addr.family === "vsock") {
    // struct sockaddr_vm { sa_family_t family; u16 reserved1; u32 port; u32 cid; u8 flags; u8 zero[3]; }
    const buf = new Uint8Array(16);
    const v = new DataView(buf.buffer);
    v.setUint16(0, AF_VSOCK, true);
    v.setUint32(4, addr.port >>> 0, true);
    v.setUint32(8, addr.cid >>> 0, true);
    return buf;
  }
  // struct sockaddr_un { sa_family_t family; char path[108]; }
  const path = new TextEncoder().encode(addr.path);
  if (path.length >= 108) throw new Error(`unix socket path too long: ${addr.path}`);
  const buf = new Uint8Array(110);
  new DataView(buf.buffer).setUint16(0, AF_UNIX, true);
  buf.set(path, 2);
  return buf;
}

function familyOf(addr: SockAddr): number {
  return addr.family === "vsock" ? AF_VSOCK : AF_UNIX;
}

/** A non-blocking listening socket; returns its fd. */
export function listenSocket(addr: SockAddr, backlog = 16): number {
  const fd = unwrap(
    libc().socket(familyOf(addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    "socket",
  );
  try {
    const sa = encodeAddr(addr);
    unwrap(libc().bind(fd, sa, sa.length), "bind", describe(addr));
    unwrap(libc().listen(fd, backlog), "listen", describe(addr));
  } catch (e) {
    libc().close(fd);
    throw e;
  }
  return fd;
}

/** Who connected: the vsock peer's CID and port, or a Unix-socket peer. */
export type SockPeer = { family: "vsock"; cid: number; port: number } | { family: "unix" };

/** The peer in a struct sockaddr filled by accept4. */
export function decodePeer(sa: Uint8Array<ArrayBuffer>): SockPeer {
  const v = new DataView(sa.buffer, sa.byteOffset, sa.byteLength);
  if (v.getUint16(0, true) === AF_VSOCK) {
    return { family: "vsock", port: v.getUint32(4, true), cid: v.getUint32(8, true) };
  }
  return { family: "unix" };
}

/**
 * accept4 on a non-blocking listener: the fd and who connected, or undefined when none is
 * pending (EAGAIN).
 */
export function acceptNonBlocking(fd: number): { fd: number; peer: SockPeer } | undefined {
  const sa = new Uint8Array(128); // sockaddr_storage
  const len = new Uint32Array([sa.length]);
  const r = libc().accept4(fd, sa, new Uint8Array(len.buffer), SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (r === -1) {
    const e = errno();
    if (e === 11 || e === 4) return undefined; // EAGAIN, EINTR
    throw new ErrnoError("accept4", e);
  }
  return { fd: r, peer: decodePeer(sa) };
}

/** Start a non-blocking connect; returns the fd (completion is signalled by writability). */
export function connectStart(addr: SockAddr): number {
  const fd = unwrap(
    libc().socket(familyOf(addr), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
    "socket",
  );
  const sa = encodeAddr(addr);
  const r = libc().connect(fd, sa, sa.length);
  if (r === -1) {
    const e = errno();
    if (e !== 115 && e !== 11) { // EINPROGRESS, EAGAIN
      libc().close(fd);
      throw new ErrnoError("connect", e, describe(addr));
    }
  }
  return fd;
}

/** After writability: the deferred connect result (0 or throws). */
export function connectResult(fd: number, addr: SockAddr): void {
  const val = new Int32Array(1);
  const len = new Uint32Array([4]);
  unwrap(
    libc().getsockopt(
      fd,
      SOL_SOCKET,
      SO_ERROR,
      new Uint8Array(val.buffer),
      new Uint8Array(len.buffer),
    ),
    "getsockopt",
  );
  if (val[0] !== 0) throw new ErrnoError("connect", val[0]!, describe(addr));
}

/** Non-blocking read: bytes read (0 = EOF), or undefined on EAGAIN. */
export function readNonBlocking(fd: number, buf: Uint8Array<ArrayBuffer>): number | undefined {
  const r = Number(libc().read(fd, buf, BigInt(buf.length)));
  if (r === -1) {
    const e = errno();
    if (e === 11 || e === 4) return undefined;
    throw new ErrnoError("read", e);
  }
  return r;
}

/** Non-blocking write: bytes written, or undefined on EAGAIN. */
export function writeNonBlocking(fd: number, buf: Uint8Array<ArrayBuffer>): number | undefined {
  const r = Number(libc().write(fd, buf, BigInt(buf.length)));
  if (r === -1) {
    const e = errno();
    if (e === 11 || e === 4) return undefined;
    throw new ErrnoError("write", e);
  }
  return r;
}

export function closeFd(fd: number): void {
  libc().close(fd);
}

export function unlink(path: string): void {
  libc().unlink(cstr(path));
}

export const POLLIN = 1;
export const POLLOUT = 4;
export const POLLERR = 8;
export const POLLHUP = 16;

/**
 * Wait (off the main thread, no busy loop) until fd has `events` or `timeoutMs` passes.
 * Returns the revents (0 on timeout).
 */
export async function pollFd(fd: number, events: number, timeoutMs: number): Promise<number> {
  // struct pollfd { int fd; short events; short revents; }
  const buf = new Uint8Array(8);
  const v = new DataView(buf.buffer);
  v.setInt32(0, fd, true);
  v.setInt16(4, events, true);
  const r = await libc().poll(buf, 1n, timeoutMs);
  if (r <= 0) return 0;
  return v.getInt16(6, true);
}

function describe(addr: SockAddr): string {
  return addr.family === "vsock" ? `vsock ${addr.cid}:${addr.port}` : addr.path;
}

// ---- file-system identity and fd-based file operations (src/fs only) --------------------

/** setgroups(2) as a raw system call: it changes the calling thread only. */
const SYS_SETGROUPS: Record<string, bigint> = { x86_64: 116n, aarch64: 159n };

/** This thread's supplementary groups. */
export function getGroups(): number[] {
  const n = unwrap(libc().getgroups(0, new Uint8Array(0)), "getgroups");
  const buf = new Uint32Array(Math.max(n, 1));
  const got = unwrap(libc().getgroups(n, new Uint8Array(buf.buffer)), "getgroups");
  return [...buf.subarray(0, got)];
}

/**
 * Set this thread's file-system identity: supplementary groups, fsgid, fsuid (in that order:
 * setgroups needs CAP_SETGID, which a non-zero fsuid does not remove, but do it first anyway).
 * Only the calling thread changes (the kernel keeps credentials per thread; glibc's wrappers
 * would broadcast to every thread). Returns false when the kernel did not apply it.
 */
export function setThreadFsIdentity(uid: number, gid: number, groups: number[]): boolean {
  const nr = SYS_SETGROUPS[Deno.build.arch];
  if (nr === undefined) return false;
  const list = new Uint32Array(groups);
  if (Number(libc().syscall(nr, BigInt(groups.length), new Uint8Array(list.buffer))) !== 0) {
    return false;
  }
  libc().setfsgid(gid);
  libc().setfsuid(uid);
  // With an invalid id, both return the current value without changing it.
  return libc().setfsuid(0xffffffff) === uid && libc().setfsgid(0xffffffff) === gid;
}

export const O_RDONLY = 0;
export const O_NONBLOCK = 0o4000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_CLOEXEC = 0o2000000;
export const O_PATH = 0o10000000;

/** open(2); throws ErrnoError (ELOOP when the last component is a link and O_NOFOLLOW). */
export function openFd(path: string, flags: number, mode = 0): number {
  return unwrap(libc().open(cstr(path), flags, mode), "open", path);
}

export function fchown(fd: number, uid: number, gid: number): void {
  unwrap(libc().fchown(fd, uid, gid), "fchown");
}

export function fchmod(fd: number, mode: number): void {
  unwrap(libc().fchmod(fd, mode), "fchmod");
}

export function mkfifo(path: string, mode: number): void {
  unwrap(libc().mkfifo(cstr(path), mode), "mkfifo", path);
}

/**
 * Size and free space of the file system holding `path` (statvfs(2); on 64-bit Linux the
 * struct starts with unsigned long f_bsize, f_frsize, then fsblkcnt_t f_blocks, f_bfree,
 * f_bavail, all 8 bytes).
 */
export function fsSpace(path: string): { totalBytes: number; availBytes: number } {
  const buf = new Uint8Array(128);
  unwrap(libc().statvfs(cstr(path), buf), "statvfs", path);
  const v = new DataView(buf.buffer);
  const frsize = Number(v.getBigUint64(8, true)) || Number(v.getBigUint64(0, true));
  return {
    totalBytes: Number(v.getBigUint64(16, true)) * frsize,
    availBytes: Number(v.getBigUint64(32, true)) * frsize,
  };
}
