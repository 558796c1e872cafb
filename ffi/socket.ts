/**
 * Async sockets over FFI (AF_VSOCK has no Deno API): readiness from poll(2) on a worker
 * thread, then a non-blocking syscall on the main thread. Shaped like Deno.Conn's
 * read/write/close so callers treat vsock and Unix sockets alike.
 */
import {
  acceptNonBlocking,
  closeFd,
  connectResult,
  connectStart,
  listenSocket,
  POLLERR,
  pollFd,
  POLLHUP,
  POLLIN,
  POLLOUT,
  readNonBlocking,
  type SockAddr,
  type SockPeer,
  unlink,
  writeNonBlocking,
} from "./libc.ts";

export type { SockAddr, SockPeer } from "./libc.ts";

/** How long one poll waits before checking whether the socket was closed meanwhile. */
const SLICE_MS = 500;

export class FfiConn {
  #fd: number;
  #closed = false;
  /** Who connected (accepted connections only). */
  readonly peer: SockPeer | undefined;

  constructor(fd: number, peer?: SockPeer) {
    this.#fd = fd;
    this.peer = peer;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes read into p, or null at end of stream (or once closed). */
  async read(p: Uint8Array<ArrayBuffer>): Promise<number | null> {
    while (!this.#closed) {
      const n = readNonBlocking(this.#fd, p);
      if (n !== undefined) return n === 0 ? null : n;
      await pollFd(this.#fd, POLLIN, SLICE_MS);
    }
    return null;
  }

  /** Write some of p (like Deno.Conn.write); waits for buffer space, never spins. */
  async write(p: Uint8Array<ArrayBuffer>): Promise<number> {
    while (!this.#closed) {
      const n = writeNonBlocking(this.#fd, p);
      if (n !== undefined) return n;
      const ev = await pollFd(this.#fd, POLLOUT, SLICE_MS);
      if (ev & (POLLERR | POLLHUP)) throw new Error("write: connection closed by peer");
    }
    throw new Error("write: socket closed");
  }

  /** Write all of p, or throw after `timeoutMs` (a stalled peer must not hold us). */
  async writeAll(p: Uint8Array<ArrayBuffer>, timeoutMs = 5000): Promise<void> {
    const until = performance.now() + timeoutMs;
    let off = 0;
    while (off < p.length) {
      if (performance.now() > until) throw new Error("write: timed out");
      off += await this.write(p.subarray(off));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}

export class FfiListener {
  #fd: number;
  #closed = false;
  readonly addr: SockAddr;

  constructor(addr: SockAddr, backlog = 16) {
    if (addr.family === "unix") unlink(addr.path); // a stale socket file from a previous run
    this.#fd = listenSocket(addr, backlog);
    this.addr = addr;
  }

  /** The next connection, or null once closed. */
  async accept(): Promise<FfiConn | null> {
    while (!this.#closed) {
      const got = acceptNonBlocking(this.#fd);
      if (got !== undefined) return new FfiConn(got.fd, got.peer);
      await pollFd(this.#fd, POLLIN, SLICE_MS);
    }
    return null;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
    if (this.addr.family === "unix") unlink(this.addr.path);
  }
}

/** Connect with a timeout. */
export async function ffiConnect(addr: SockAddr, timeoutMs = 2000): Promise<FfiConn> {
  const fd = connectStart(addr);
  try {
    const ev = await pollFd(fd, POLLOUT, timeoutMs);
    if (ev === 0) throw new Error(`connect to ${addr.family} timed out after ${timeoutMs} ms`);
    connectResult(fd, addr);
    return new FfiConn(fd);
  } catch (error) {
    closeFd(fd);
    throw error;
  }
}
