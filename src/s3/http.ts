/**
 * EFFECT: the S3 client's HTTP/1.1 transport, over Deno.connect (+ Deno.startTls). Not fetch:
 * fetch sends a streamed body chunked (S3 wants a Content-Length: 411) and a whole body gives
 * no progress signal, so the only timeout it offers is on the whole request, which a slow but
 * working store can never beat. Here every wait on the network (one write, one read) must end
 * within `idleMs`: a store that keeps moving bytes is never cut off, a hung one fails within
 * idleMs, and the message says how far the exchange got. Connections are kept per origin for
 * the next request (pool.ts); one that fails when reused, before any byte of an answer, is
 * taken for a connection the store closed while idle, and an idempotent request is sent once
 * more on a new one.
 */
import { formatSeconds, HttpError } from "./http_error.ts";
import { Connection, errorText, Exchange } from "./http_conn.ts";
import {
  type BodyDecoder,
  decoderFor,
  findHeadEnd,
  framing,
  HEAD_LIMIT,
  parseHead,
  ProtocolError,
  renderHead,
  type ResponseHead,
} from "./http_parse.ts";
import { IdlePool } from "./pool.ts";
import { concat } from "../util/bytes.ts";

export { HttpError };

/** A body this small leaves in one write with the head. */
const COALESCE_BYTES = 16 * 1024;
/** How long to wait for the answer of a store that hung up mid-upload (it may say why). */
const EARLY_ANSWER_MS = 2000;
const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
const EMPTY = new Uint8Array(0);

export interface TransportOptions {
  /** PEM CA certificates trusted in addition to the system's (a self-hosted store). */
  caCerts?: string[];
  /** TCP connect and TLS handshake. Default 10 s. */
  connectMs?: number;
  /** No byte sent or received for this long → fail. Default 30 s; a request may set its own. */
  idleMs?: number;
  /** Idle connections kept per origin (default 8; 0: one connection per request). */
  maxIdle?: number;
  /** How long an idle connection is kept (default 30 s). */
  keepAliveMs?: number;
}

export interface HttpRequest {
  method: string;
  url: URL;
  /** Sent as given; `host` and `content-length` are added when absent. */
  headers: Record<string, string>;
  body?: Uint8Array;
  idleMs?: number;
  /** The whole exchange, answer body included: only where a caller wants one. */
  deadlineMs?: number;
  /** Cancels the request or the reading of its body; the promise rejects with its reason. */
  signal?: AbortSignal;
  /** Turns a transport failure into the caller's error, for the answer's body too. */
  wrapError?: (error: HttpError) => Error;
}

export class HttpTransport {
  readonly #caCerts: string[] | undefined;
  readonly #connectMs: number;
  readonly #idleMs: number;
  readonly #pool: IdlePool<Connection>;
  /** TCP connections opened so far (tests count reuse with it). */
  connections = 0;

  constructor(o: TransportOptions = {}) {
    this.#caCerts = o.caCerts?.length ? o.caCerts : undefined;
    this.#connectMs = o.connectMs ?? 10_000;
    this.#idleMs = o.idleMs ?? 30_000;
    this.#pool = new IdlePool({
      ...(o.maxIdle === undefined ? {} : { maxIdle: o.maxIdle }),
      ...(o.keepAliveMs === undefined ? {} : { keepAliveMs: o.keepAliveMs }),
    });
  }

  /** Close the idle connections; answers still being read close theirs when done. */
  close(): void {
    this.#pool.close();
  }

  /**
   * Send the request; resolves with the answer once its head is in (the body streams, each read
   * bounded by the idle timeout). Rejects with HttpError (through `wrapError`), or the signal's
   * reason.
   */
  async request(req: HttpRequest): Promise<Response> {
    const { url, method } = req;
    const body = req.body ?? EMPTY;
    const headers = Object.entries(req.headers);
    const names = new Set(headers.map(([k]) => k.toLowerCase()));
    if (!names.has("host")) headers.unshift(["host", url.host]);
    const length = headers.find(([k]) => k.toLowerCase() === "content-length")?.[1];
    if (length === undefined) {
      if (body.length || method === "PUT" || method === "POST") {
        headers.push(["content-length", String(body.length)]);
      }
    } else if (length.trim() !== String(body.length)) {
      throw new TypeError(`content-length ${length} for a body of ${body.length} bytes`);
    }
    const head = renderHead(method, `${url.pathname}${url.search}`, headers);
    const origin = `${url.protocol}//${url.host}`;
    const ex = new Exchange(req, this.#idleMs);
    let conn = this.#pool.take(origin);
    try {
      for (let attempt = 0;; attempt++) {
        const reused = conn !== undefined;
        conn ??= await this.#connect(url, ex);
        try {
          return await this.#exchange(conn, ex, { req, head, body, origin });
        } catch (error) {
          conn.close();
          const stale = reused && attempt === 0 && IDEMPOTENT.has(method) &&
            ex.progress.received === 0 && error instanceof HttpError && error.kind === "closed";
          if (!stale) throw error;
          conn = undefined;
          ex.restart();
        }
      }
    } catch (error) {
      ex.end();
      throw ex.wrap(error);
    }
  }

  async #connect(url: URL, ex: Exchange): Promise<Connection> {
    const https = url.protocol === "https:";
    if (!https && url.protocol !== "http:") {
      throw new HttpError("connect", `cannot speak ${url.protocol} to ${url.host}`);
    }
    const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
    const port = Number(url.port) || (https ? 443 : 80);
    const ctl = new AbortController();
    let timedOut = false;
    let tls: Deno.TlsConn | undefined;
    let stage: "connect" | "tls" = "connect";
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.#connectMs);
    const stop = () => ctl.abort();
    ex.signal.addEventListener("abort", stop);
    // A handshake cannot take a signal: closing the socket ends it.
    ctl.signal.addEventListener("abort", () => {
      try {
        tls?.close();
      } catch { /* closed */ }
    });
    try {
      ex.progress.phase = "connect";
      if (ex.signal.aborted) throw ex.signal.reason;
      const tcp = await Deno.connect({ hostname, port, signal: ctl.signal });
      this.connections++;
      tcp.setNoDelay(true);
      if (!https) return new Connection(tcp);
      stage = "tls";
      tls = await Deno.startTls(tcp, {
        hostname,
        ...(this.#caCerts ? { caCerts: this.#caCerts } : {}),
      });
      if (ctl.signal.aborted) throw new Error("aborted");
      await tls.handshake();
      return new Connection(tls);
    } catch (error) {
      try {
        tls?.close();
      } catch { /* closed */ }
      if (ex.signal.aborted) throw ex.signal.reason;
      const within = formatSeconds(this.#connectMs);
      if (stage === "connect") {
        throw new HttpError(
          "connect",
          timedOut
            ? `no connection to ${url.host} within ${within}`
            : `cannot connect to ${url.host}: ${errorText(error)}`,
          { cause: error },
        );
      }
      throw new HttpError(
        "tls",
        timedOut
          ? `no TLS handshake with ${url.host} within ${within}`
          : `TLS handshake with ${url.host} failed: ${errorText(error)}`,
        { cause: error },
      );
    } finally {
      clearTimeout(timer);
      ex.signal.removeEventListener("abort", stop);
    }
  }

  async #exchange(
    conn: Connection,
    ex: Exchange,
    o: { req: HttpRequest; head: Uint8Array; body: Uint8Array; origin: string },
  ): Promise<Response> {
    const { req, head, body, origin } = o;
    ex.attach(conn, head.length);
    const p = ex.progress;
    p.phase = "send";
    let written = 0;
    const count = (n: number) => {
      written += n;
      p.sent = Math.max(0, written - head.length);
    };
    let early: { head: ResponseHead; rest: Uint8Array } | undefined;
    try {
      if (body.length <= COALESCE_BYTES) await conn.write(ex, concat([head, body]), count);
      else {
        await conn.write(ex, head, count);
        await conn.write(ex, body, count);
      }
    } catch (error) {
      // A store may answer (403, 400) and hang up before taking the whole body: read why.
      if (!(error instanceof HttpError && error.kind === "closed")) throw error;
      early = await this.#readHead(conn, ex, EARLY_ANSWER_MS).catch(() => undefined);
      if (!early) throw error;
    }
    p.phase = "wait";
    const { head: answer, rest } = early ?? await this.#readHead(conn, ex);
    const { body: frame, reusable } = framing(req.method, answer);
    p.phase = "receive";
    p.toReceive = frame.kind === "length" ? frame.length : frame.kind === "none" ? 0 : undefined;
    const keep = reusable && !early;
    const headers = new Headers();
    try {
      for (const [k, v] of answer.headers) headers.append(k, v);
    } catch (error) {
      throw new ProtocolError(`bad header: ${errorText(error)}`);
    }
    const init = { status: answer.status, statusText: answer.reason, headers };
    const nullBody = req.method === "HEAD" || [204, 205, 304].includes(answer.status);
    if (frame.kind === "none") {
      if (keep && !rest.length) this.#pool.put(origin, conn);
      else conn.close();
      ex.end();
      return new Response(nullBody ? null : new ReadableStream({ start: (c) => c.close() }), init);
    }
    const stream = this.#bodyStream(conn, ex, decoderFor(frame), rest, (ok) => {
      if (ok && keep) this.#pool.put(origin, conn);
      else conn.close();
      ex.end();
    });
    return new Response(stream, init);
  }

  /** The answer's head, past any interim 1xx; the bytes after it start the body. */
  async #readHead(
    conn: Connection,
    ex: Exchange,
    idleMs?: number,
  ): Promise<{ head: ResponseHead; rest: Uint8Array }> {
    let buf: Uint8Array = EMPTY;
    for (;;) {
      const chunk = await conn.read(ex, idleMs);
      if (chunk === null) throw ex.closed();
      const searched = buf.length;
      buf = buf.length ? concat([buf, chunk]) : chunk;
      let end = findHeadEnd(buf, searched);
      while (end !== -1) {
        const head = parseHead(buf.subarray(0, end));
        buf = buf.subarray(end);
        if (head.status >= 200) return { head, rest: buf };
        if (head.status === 101) throw new ProtocolError("unexpected 101 Switching Protocols");
        end = findHeadEnd(buf);
      }
      if (buf.length > HEAD_LIMIT) {
        throw new ProtocolError(`response head larger than ${HEAD_LIMIT} bytes`);
      }
    }
  }

  /** The body as it arrives; `done(reusable)` once it ended, failed or was cancelled. */
  #bodyStream(
    conn: Connection,
    ex: Exchange,
    decoder: BodyDecoder,
    first: Uint8Array,
    done: (reusable: boolean) => void,
  ): ReadableStream<Uint8Array> {
    let pending: Uint8Array | undefined = first.length ? first : undefined;
    let finished = false;
    const finish = (reusable: boolean) => {
      if (finished) return;
      finished = true;
      done(reusable);
    };
    return new ReadableStream<Uint8Array>({
      async pull(ctl) {
        try {
          for (;;) {
            const input = pending ?? await conn.read(ex);
            pending = undefined;
            if (input === null) {
              if (!decoder.endsAtClose) throw ex.closed();
              finish(false);
              ctl.close();
              return;
            }
            const { data, done, extra } = decoder.push(input);
            for (const d of data) {
              ex.progress.bodyReceived += d.length;
              ctl.enqueue(d);
            }
            if (done) {
              finish(extra === 0);
              ctl.close();
              return;
            }
            if (data.length) return;
          }
        } catch (error) {
          finish(false);
          throw ex.wrap(error);
        }
      },
      cancel() {
        // A small answer (an error document) often came whole with the head: then the
        // connection is still good.
        let whole = false;
        try {
          const left = pending && decoder.push(pending);
          whole = !!left && left.done && left.extra === 0;
        } catch { /* not whole */ }
        finish(whole);
      },
    }, { highWaterMark: 0 });
  }
}
