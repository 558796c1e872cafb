/**
 * EFFECT: serve the control protocol on a Unix socket (always; mode 0600 inside a 0700
 * directory, so there is no moment it is reachable by others) and on AF_VSOCK (through FFI)
 * when configured. Each connection is handled on its own; nothing a client sends can throw
 * into the supervisor.
 */
import { FfiListener, VMADDR_CID_ANY } from "../../ffi/mod.ts";
import type { RootTree } from "../fs/tree.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { acceptLoop } from "../util/accept_loop.ts";
import { HOST_CID, RefusalLog, vsockPeerAllowed } from "./vsock_peer.ts";
import {
  CLOSING_ERRORS,
  encodeFrame,
  errorResponse,
  FrameDecoder,
  parseRequest,
  type Request,
  type Response,
} from "./codec.ts";

/** What Deno.Conn and FfiConn have in common. */
export interface ByteStream {
  read(p: Uint8Array<ArrayBuffer>): Promise<number | null>;
  write(p: Uint8Array<ArrayBuffer>): Promise<number>;
  close(): void;
}

export type Dispatch = (req: Request) => Promise<Response>;

async function writeAll(conn: ByteStream, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

async function send(conn: ByteStream, res: Response): Promise<void> {
  let frame: Uint8Array<ArrayBuffer>;
  try {
    frame = encodeFrame(res);
  } catch (error) {
    frame = encodeFrame(
      errorResponse(res.id, "internal", `response not sendable: ${errorMessage(error)}`),
    );
  }
  await writeAll(conn, frame);
}

/** One connection: requests in order until the peer closes, idles out, or breaks the protocol. */
export async function serveConnection(
  conn: ByteStream,
  dispatch: Dispatch,
  idleMs = 300_000,
): Promise<void> {
  const decoder = new FrameDecoder();
  const buf = new Uint8Array(64 * 1024);
  try {
    for (;;) {
      let next = decoder.next();
      while (next.kind === "need-more") {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const idle = new Promise<"idle">((r) => (timer = setTimeout(() => r("idle"), idleMs)));
        const n = await Promise.race([conn.read(buf), idle]).finally(() => clearTimeout(timer));
        if (n === "idle" || n === null) return;
        decoder.push(buf.subarray(0, n));
        next = decoder.next();
      }
      if (next.kind === "error") {
        await send(conn, errorResponse(null, next.code, next.message));
        return;
      }
      const parsed = parseRequest(next.payload);
      if (!parsed.ok) {
        await send(conn, errorResponse(parsed.id, parsed.code, parsed.message));
        return;
      }
      let res: Response;
      try {
        res = await dispatch(parsed.value);
      } catch (error) {
        res = errorResponse(parsed.value.id, "internal", errorMessage(error));
      }
      await send(conn, res);
      if (!res.ok && CLOSING_ERRORS.has(res.error.code)) return;
    }
  } catch (error) {
    log.debug(`control connection ended: ${errorMessage(error)}`);
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

export class ControlServer {
  readonly #dispatch: Dispatch;
  readonly #closers: (() => void)[] = [];

  constructor(dispatch: Dispatch) {
    this.#dispatch = dispatch;
  }

  /** Accept until closed; EMFILE and the like back off and keep listening (accept_loop.ts). */
  #accept<C extends ByteStream>(
    next: () => Promise<C | null>,
    what: string,
    admit: (conn: C) => boolean = () => true,
  ): void {
    let closed = false;
    this.#closers.push(() => (closed = true));
    acceptLoop(next, (conn) => {
      if (admit(conn)) serveConnection(conn, this.#dispatch);
      else conn.close();
    }, { what: `control ${what}`, closed: () => closed });
  }

  /**
   * Listen on `path`, in a directory of `tree` (root's) made first with `dirMode`: 0700 for the
   * control socket, so it is never reachable by others; 0755 for the archive socket, which is
   * then handed to `owner` (postgres) with mode 0600.
   */
  listenUnix(
    tree: RootTree,
    path: string,
    o: { dirMode: number; owner?: { uid: number; gid: number } },
  ): void {
    const dir = path.slice(0, path.lastIndexOf("/"));
    tree.ensureDir(dir, o.dirMode);
    tree.remove(path, false); // a stale socket
    const listener = Deno.listen({ transport: "unix", path });
    tree.give(path, o.owner, 0o600);
    this.#closers.push(() => listener.close());
    this.#accept(() => listener.accept(), path);
  }

  /**
   * Listen on vsock `port`, through FFI; only connections from `peerCid` (the host) are
   * served, others are closed at once (vsock_peer.ts).
   */
  listenVsock(port: number, peerCid: number = HOST_CID): void {
    const listener = new FfiListener({ family: "vsock", cid: VMADDR_CID_ANY, port });
    this.#closers.push(() => listener.close());
    const refusals = new RefusalLog({ port, allowedCid: peerCid });
    this.#accept(() => listener.accept(), `vsock port ${port}`, (conn) => {
      if (vsockPeerAllowed(conn.peer, peerCid)) return true;
      const line = refusals.refused(conn.peer, performance.now());
      if (line) log.warn(line);
      return false;
    });
  }

  close(): void {
    for (const close of this.#closers.splice(0)) {
      try {
        close();
      } catch { /* already closed */ }
    }
  }
}
