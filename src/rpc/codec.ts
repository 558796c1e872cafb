/**
 * PURE: the control protocol's wire format (documented in ARCHITECTURE.md, "Control protocol").
 *
 *   frame    = u32 big-endian length N, then N bytes of UTF-8 JSON
 *   request  = {"v": 1, "id": <string|number>, "cmd": <string>, "args": {...}?}
 *   response = {"v": 1, "id": <same>, "ok": true,  "result": <any>}
 *            | {"v": 1, "id": <same|null>, "ok": false, "error": {"code": <string>, "message": <string>}}
 *
 * One request, one response, in order, on a connection. A frame that is oversized or not a
 * request, or a version we do not speak, gets an error response and the connection is closed.
 */

export const PROTOCOL_VERSION = 1;
export const MAX_REQUEST_BYTES = 64 * 1024;
export const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export type ErrorCode =
  | "bad_frame"
  | "too_large"
  | "bad_version"
  | "unknown_command"
  | "bad_args"
  | "unavailable"
  | "failed"
  | "timeout"
  | "internal";

/** Errors after which the server closes the connection (the stream can no longer be trusted). */
export const CLOSING_ERRORS: ReadonlySet<ErrorCode> = new Set([
  "bad_frame",
  "too_large",
  "bad_version",
  "unknown_command",
]);

export type RequestId = string | number;

export interface Request {
  v: number;
  id: RequestId;
  cmd: string;
  args: Record<string, unknown>;
}

export type Response =
  | { v: number; id: RequestId; ok: true; result: unknown }
  | { v: number; id: RequestId | null; ok: false; error: { code: ErrorCode; message: string } };

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

export function encodeFrame(value: unknown, max = MAX_RESPONSE_BYTES): Uint8Array<ArrayBuffer> {
  const body = enc.encode(JSON.stringify(value));
  if (body.length > max) throw new RangeError(`frame of ${body.length} bytes exceeds ${max}`);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, 4);
  return out;
}

export type Decoded =
  | { kind: "frame"; payload: Uint8Array }
  | { kind: "need-more" }
  | { kind: "error"; code: ErrorCode; message: string };

/** Incremental frame splitter with a size limit; never throws. */
export class FrameDecoder {
  #buf = new Uint8Array(0);
  readonly #max: number;

  constructor(max = MAX_REQUEST_BYTES) {
    this.#max = max;
  }

  push(chunk: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
  }

  /** Bytes received but not yet part of a returned frame. */
  get buffered(): number {
    return this.#buf.length;
  }

  next(): Decoded {
    if (this.#buf.length < 4) return { kind: "need-more" };
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0, false);
    if (len > this.#max) {
      return {
        kind: "error",
        code: "too_large",
        message: `frame of ${len} bytes exceeds the limit of ${this.#max}`,
      };
    }
    if (this.#buf.length < 4 + len) return { kind: "need-more" };
    const payload = this.#buf.slice(4, 4 + len);
    this.#buf = this.#buf.slice(4 + len);
    return { kind: "frame", payload };
  }
}

export type Parsed<T> = { ok: true; value: T } | {
  ok: false;
  id: RequestId | null;
  code: ErrorCode;
  message: string;
};

/** Validate a request frame's payload. */
export function parseRequest(payload: Uint8Array): Parsed<Request> {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(payload));
  } catch {
    return { ok: false, id: null, code: "bad_frame", message: "frame is not UTF-8 JSON" };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return { ok: false, id: null, code: "bad_frame", message: "request is not a JSON object" };
  }
  const r = doc as Record<string, unknown>;
  const id = typeof r.id === "string" || (typeof r.id === "number" && Number.isFinite(r.id))
    ? r.id
    : null;
  if (id === null) {
    return {
      ok: false,
      id: null,
      code: "bad_frame",
      message: "request has no string or number id",
    };
  }
  if (r.v !== PROTOCOL_VERSION) {
    return {
      ok: false,
      id,
      code: "bad_version",
      message: `protocol version ${JSON.stringify(r.v)} is not supported; use ${PROTOCOL_VERSION}`,
    };
  }
  if (typeof r.cmd !== "string" || r.cmd === "") {
    return { ok: false, id, code: "bad_frame", message: "request has no cmd" };
  }
  if (
    r.args !== undefined && (r.args === null || typeof r.args !== "object" || Array.isArray(r.args))
  ) {
    return { ok: false, id, code: "bad_frame", message: "args must be an object" };
  }
  return {
    ok: true,
    value: { v: PROTOCOL_VERSION, id, cmd: r.cmd, args: (r.args ?? {}) as Record<string, unknown> },
  };
}

/** Validate a response frame's payload (the client side). */
export function parseResponse(payload: Uint8Array): Parsed<Response> {
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(payload));
  } catch {
    return { ok: false, id: null, code: "bad_frame", message: "response is not UTF-8 JSON" };
  }
  const r = doc as Record<string, unknown>;
  if (
    r === null || typeof r !== "object" || typeof r.ok !== "boolean" || r.v !== PROTOCOL_VERSION
  ) {
    return { ok: false, id: null, code: "bad_frame", message: "not a version 1 response" };
  }
  return { ok: true, value: r as unknown as Response };
}

export function okResponse(id: RequestId, result: unknown): Response {
  return { v: PROTOCOL_VERSION, id, ok: true, result };
}

export function errorResponse(id: RequestId | null, code: ErrorCode, message: string): Response {
  return { v: PROTOCOL_VERSION, id, ok: false, error: { code, message } };
}
