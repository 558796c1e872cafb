/**
 * EFFECT: HTTP on a configurable address (loopback by default): /healthz (the supervisor is
 * alive and not failed), /readyz (5432 serves queries right now), /metrics (Prometheus).
 * Every handler has a deadline, so a scrape never hangs.
 *
 * A small HTTP/1.1 server of our own on Deno.listen (Deno.serve has no connection cap or
 * header timeout, and ends on EMFILE): at most `maxConnections` at once, the request head
 * within `headTimeoutMs` and `maxHeadBytes`, one response per connection. When every slot is
 * taken, the oldest connection still sending its head makes room (a silent or trickling client
 * cannot hold a slot against a prober that sends its request at once); when all are busy
 * answering, a new connection is closed at once. Accept errors never end the loop
 * (util/accept_loop.ts).
 */
import { acceptLoop } from "../util/accept_loop.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import {
  type FileBody,
  type HttpResponse,
  isFileBody,
  MAX_HEAD_BYTES,
  parseHead,
  renderResponse,
} from "./wire.ts";

export interface HttpHandlers {
  live(): boolean;
  ready(): Promise<{ ready: boolean; reason: string }>;
  metrics(): Promise<string>;
  /** More GET paths answered with JSON (e.g. /v1/pg/replication/lag). */
  json?: Record<string, () => Promise<unknown>>;
  /** Anything else (the WAL sink's API): a response, or undefined for 404. */
  other?: (req: { path: string; authorization?: string }) => Promise<HttpResponse | undefined>;
}

export interface HttpLimits {
  /** Connections open at once (default 32). */
  maxConnections: number;
  /** From accept to a complete request head (default 5000 ms). */
  headTimeoutMs: number;
  /** Size of the request head (default 8 KiB). */
  maxHeadBytes: number;
  /** Writing the response (default 5000 ms). */
  writeTimeoutMs: number;
}

export const defaultHttpLimits: HttpLimits = {
  maxConnections: 32,
  headTimeoutMs: 5000,
  maxHeadBytes: MAX_HEAD_BYTES,
  writeTimeoutMs: 5000,
};

export interface HttpServer {
  readonly addr: Deno.NetAddr;
  /** Connections open now. */
  readonly open: number;
  readonly stats: { accepted: number; refused: number; evicted: number; timedOut: number };
  /** Stop accepting, close every connection. */
  shutdown(): Promise<void>;
}

function deadline<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))])
    .finally(() => clearTimeout(timer));
}

export function parseHostPort(text: string): { hostname: string; port: number } {
  const m = text.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  if (!m) throw new Error(`not host:port: ${text}`);
  return { hostname: m[1]!, port: Number(m[2]) };
}

/** The endpoints. */
async function route(
  req: { path: string; authorization?: string },
  h: HttpHandlers,
): Promise<HttpResponse> {
  const path = req.path;
  try {
    if (path === "/healthz") {
      return h.live() ? { status: 200, body: "ok\n" } : { status: 503, body: "failed\n" };
    }
    if (path === "/readyz") {
      const r = await deadline(h.ready(), 3000, {
        ready: false,
        reason: "readiness check timed out",
      });
      return {
        status: r.ready ? 200 : 503,
        body: `${r.ready ? "ready" : "not ready"}: ${r.reason}\n`,
      };
    }
    if (path === "/metrics") {
      const body = await deadline(h.metrics(), 4000, "");
      return {
        status: body ? 200 : 503,
        body,
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      };
    }
    const json = h.json && Object.hasOwn(h.json, path) ? h.json[path] : undefined;
    if (json) {
      const body = await deadline(json().then((v) => JSON.stringify(v, null, 2) + "\n"), 4000, "");
      return {
        status: body ? 200 : 503,
        body: body || "timed out\n",
        headers: { "content-type": "application/json" },
      };
    }
    const other = await h.other?.(req);
    if (other) return other;
    return { status: 404, body: "not found: try /healthz, /readyz, /metrics\n" };
  } catch (error) {
    log.warn(`http ${path}: ${errorMessage(error)}`);
    return { status: 500, body: "internal error\n" };
  }
}

interface Slot {
  conn: Deno.Conn;
  answering: boolean;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/** Write all of `bytes`, or close the connection after `ms` (a peer that does not read). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array, ms: number): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), ms);
  try {
    for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first `length` bytes of a file, read and written a chunk at a time (off the event loop).
 * A file shorter than it said ends the connection early: the client sees a short body.
 */
async function sendFile(conn: Deno.Conn, body: FileBody, ms: number): Promise<void> {
  const buf = new Uint8Array(Math.min(1 << 20, Math.max(1, body.length)));
  for (let left = body.length; left > 0;) {
    const n = await body.file.read(buf.subarray(0, Math.min(buf.length, left)));
    if (n === null) throw new Error(`a file ended ${left} bytes before its content-length`);
    await writeAll(conn, buf.subarray(0, n), ms);
    left -= n;
  }
}

/** Half-close, then discard what the peer still sends, for at most 1 s or 64 KiB. */
async function lingerClose(conn: Deno.Conn): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), 1000);
  try {
    await conn.closeWrite();
    const buf = new Uint8Array(16 * 1024);
    for (let total = 0; total < 64 * 1024;) {
      const n = await conn.read(buf);
      if (n === null) break;
      total += n;
    }
  } finally {
    clearTimeout(timer);
  }
}

export function serveHttp(
  addr: { hostname: string; port: number },
  h: HttpHandlers,
  limits: Partial<HttpLimits> = {},
  tls?: { cert: string; key: string },
): HttpServer {
  const l: HttpLimits = { ...defaultHttpLimits, ...limits };
  const listener: Deno.Listener = tls
    ? Deno.listenTls({ ...addr, transport: "tcp", cert: tls.cert, key: tls.key })
    : Deno.listen({ ...addr, transport: "tcp" });
  const where = `http ${addr.hostname}:${(listener.addr as Deno.NetAddr).port}`;
  const slots = new Set<Slot>(); // insertion order: the first is the oldest
  const stats = { accepted: 0, refused: 0, evicted: 0, timedOut: 0 };
  let closed = false;
  let lastFullWarning = -Infinity;
  let shedSinceWarning = 0;

  const full = () => {
    shedSinceWarning++;
    const now = performance.now();
    if (now - lastFullWarning < 60_000) return;
    log.warn(
      `${where}: all ${l.maxConnections} connection slots taken, shedding connections (${shedSinceWarning} since the last such line); a client is holding connections open without sending requests`,
    );
    lastFullWarning = now;
    shedSinceWarning = 0;
  };

  async function handle(slot: Slot): Promise<void> {
    const { conn } = slot;
    const buf = new Uint8Array(l.maxHeadBytes);
    let len = 0;
    let res: HttpResponse | undefined;
    const timer = setTimeout(() => {
      stats.timedOut++;
      closeQuietly(conn);
    }, l.headTimeoutMs);
    try {
      for (;;) {
        const n = await conn.read(buf.subarray(len));
        if (n === null) return;
        len += n;
        const head = parseHead(buf.subarray(0, len), l.maxHeadBytes);
        if (head.kind === "need-more") continue;
        clearTimeout(timer);
        slot.answering = true;
        res = head.kind === "reject"
          ? {
            status: head.status,
            body: head.body,
            ...(head.headers ? { headers: head.headers } : {}),
          }
          : await route(head, h);
        const headOnly = head.kind === "request" && head.method === "HEAD";
        await writeAll(conn, renderResponse(res, { head: headOnly }), l.writeTimeoutMs);
        if (isFileBody(res.body) && !headOnly) await sendFile(conn, res.body, l.writeTimeoutMs);
        // A refused request may still be arriving: closing with unread bytes would reset the
        // connection and the client could lose the answer. Read a little more first.
        if (head.kind === "reject") await lingerClose(conn);
        return;
      }
    } catch (error) {
      log.debug(`${where}: connection ended: ${errorMessage(error)}`);
    } finally {
      clearTimeout(timer);
      slots.delete(slot);
      closeQuietly(conn);
      if (res && isFileBody(res.body)) {
        try {
          res.body.file.close();
        } catch { /* closed already */ }
      }
    }
  }

  function admit(conn: Deno.Conn): void {
    stats.accepted++;
    if (slots.size >= l.maxConnections) {
      let waiting: Slot | undefined;
      for (const s of slots) {
        if (!s.answering) {
          waiting = s;
          break;
        }
      }
      full();
      if (!waiting) {
        stats.refused++;
        closeQuietly(conn);
        return;
      }
      stats.evicted++;
      slots.delete(waiting);
      closeQuietly(waiting.conn);
    }
    const slot: Slot = { conn, answering: false };
    slots.add(slot);
    handle(slot);
  }

  const loop = acceptLoop(() => listener.accept(), admit, { what: where, closed: () => closed });

  return {
    addr: listener.addr as Deno.NetAddr,
    get open() {
      return slots.size;
    },
    stats,
    async shutdown() {
      if (!closed) {
        closed = true;
        try {
          listener.close();
        } catch { /* already closed */ }
        for (const s of slots) closeQuietly(s.conn);
      }
      await loop;
    },
  };
}
