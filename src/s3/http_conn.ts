/**
 * EFFECT: one request/response exchange (its progress, idle timeout, deadline and abort signal)
 * and the socket it runs on, whose every read and write is bounded by that idle timeout — with
 * the kernel's send queue as a second witness of progress while our bytes are on their way.
 * Used by http.ts only.
 */
import {
  closedMessage,
  deadlineMessage,
  HttpError,
  idleMessage,
  newProgress,
  type Progress,
} from "./http_error.ts";
import { ProtocolError } from "./http_parse.ts";
import { sendQueue } from "./send_queue.ts";

/** Body bytes per write; each must be taken by the peer within idleMs. */
const WRITE_BYTES = 64 * 1024;
const READ_BYTES = 256 * 1024;

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What an exchange needs to know of its request. */
export interface ExchangeRequest {
  body?: Uint8Array;
  idleMs?: number;
  deadlineMs?: number;
  signal?: AbortSignal;
  wrapError?: (error: HttpError) => Error;
}

/** One request/response: its progress, its idle timeout, its deadline and abort signal. */
export class Exchange {
  progress: Progress;
  readonly idleMs: number;
  readonly #ctl = new AbortController();
  readonly #req: ExchangeRequest;
  #conn: Connection | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #onAbort: (() => void) | undefined;
  /** Bytes the connection had written before this request's body: its head, and earlier ones. */
  #bodyStart = 0;

  constructor(req: ExchangeRequest, defaultIdleMs: number) {
    this.#req = req;
    this.progress = newProgress(req.body?.length ?? 0);
    this.idleMs = req.idleMs ?? defaultIdleMs;
    const { deadlineMs, signal } = req;
    if (signal?.aborted) throw signal.reason;
    if (deadlineMs !== undefined) {
      this.#timer = setTimeout(
        () => this.#fail(new HttpError("deadline", deadlineMessage(this.progress, deadlineMs))),
        deadlineMs,
      );
    }
    if (signal) {
      this.#onAbort = () => this.#fail(signal.reason);
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Aborted on the deadline or the caller's signal (connecting listens to it). */
  get signal(): AbortSignal {
    return this.#ctl.signal;
  }

  #fail(reason: unknown): void {
    this.#ctl.abort(reason);
    this.#conn?.close(reason);
  }

  attach(conn: Connection, headBytes: number): void {
    this.#conn = conn;
    this.#bodyStart = conn.written + headBytes;
    if (this.signal.aborted) conn.close(this.signal.reason);
  }

  /** The kernel still holds `queued` of the `written` bytes: what the store has is less. */
  acknowledged(written: number, queued: number): void {
    const p = this.progress;
    p.sent = Math.min(p.toSend, Math.max(0, written - queued - this.#bodyStart));
    if (p.phase === "wait" && p.sent < p.toSend) p.phase = "send";
  }

  /** Whether our own bytes may still be on their way (then the send queue tells progress). */
  get sending(): boolean {
    const { phase, toSend } = this.progress;
    return toSend > 0 && (phase === "send" || phase === "wait");
  }

  /** Sent again on a new connection: progress starts over. */
  restart(): void {
    this.progress = newProgress(this.#req.body?.length ?? 0);
  }

  end(): void {
    clearTimeout(this.#timer);
    if (this.#onAbort) this.#req.signal?.removeEventListener("abort", this.#onAbort);
  }

  idle(idleMs: number): HttpError {
    return new HttpError("idle", idleMessage(this.progress, idleMs));
  }

  closed(cause?: unknown): HttpError {
    return new HttpError(
      "closed",
      closedMessage(this.progress, cause === undefined ? "" : errorText(cause)),
      { cause },
    );
  }

  /** What the caller sees: its own error for a transport failure, a deadline or abort as is. */
  wrap(error: unknown): unknown {
    if (error instanceof ProtocolError) {
      error = new HttpError("protocol", `bad answer: ${error.message}`, { cause: error });
    }
    return error instanceof HttpError && this.#req.wrapError ? this.#req.wrapError(error) : error;
  }
}

/** A socket whose every wait is bounded by the exchange's idle timeout. */
export class Connection {
  readonly #conn: Deno.Conn;
  /** Bytes the kernel took from us over the connection's life. */
  written = 0;
  #buf = new Uint8Array(READ_BYTES);
  #closed = false;
  /** Why we closed it (idle, deadline, abort): what a pending read or write then throws. */
  #reason: unknown;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  close(reason?: unknown): void {
    if (reason !== undefined && this.#reason === undefined) this.#reason = reason;
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  /**
   * Run one read or write; fail it (by closing the socket: the pending op rejects) once nothing
   * moved for idleMs. While our bytes may still be on their way, the kernel's send queue
   * shrinking is progress too (send_queue.ts), looked at every quarter of idleMs.
   */
  async #wait<T>(ex: Exchange, op: () => Promise<T>, idleMs: number): Promise<T> {
    if (this.#closed) throw this.#reason ?? ex.closed();
    const watchQueue = ex.sending;
    let lastMove = performance.now();
    let lastQueue: number | undefined;
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = async () => {
      if (watchQueue) {
        const queued = await sendQueue(this.#conn);
        if (queued !== undefined) {
          if (lastQueue !== undefined && queued !== lastQueue) lastMove = performance.now();
          lastQueue = queued;
          ex.acknowledged(this.written, queued);
        }
      }
      if (settled) return;
      const idle = performance.now() - lastMove;
      if (idle >= idleMs - 2) return this.close(ex.idle(idleMs));
      timer = setTimeout(check, watchQueue ? Math.min(idleMs / 4, idleMs - idle) : idleMs - idle);
    };
    timer = setTimeout(check, watchQueue ? idleMs / 4 : idleMs);
    try {
      return await op();
    } catch (error) {
      throw this.#reason ?? ex.closed(error);
    } finally {
      settled = true;
      clearTimeout(timer);
    }
  }

  /** Write all of `bytes`; `written(n)` after each write the kernel took. */
  async write(ex: Exchange, bytes: Uint8Array, written: (n: number) => void): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      const chunk = bytes.subarray(off, off + WRITE_BYTES);
      const n = await this.#wait(ex, () => this.#conn.write(chunk), ex.idleMs);
      off += n;
      this.written += n;
      written(n);
    }
  }

  /** The next bytes (the caller may keep them), or null when the peer closed. */
  async read(ex: Exchange, idleMs = ex.idleMs): Promise<Uint8Array | null> {
    const buf = this.#buf;
    const n = await this.#wait(ex, () => this.#conn.read(buf), idleMs);
    if (n === null) return null;
    ex.progress.received += n;
    if (n < READ_BYTES / 2) return buf.slice(0, n);
    this.#buf = new Uint8Array(READ_BYTES); // hand the full buffer over instead of copying it
    return buf.subarray(0, n);
  }
}
