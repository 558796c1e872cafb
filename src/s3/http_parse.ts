/**
 * PURE: the HTTP/1.1 wire format the S3 transport (http.ts) speaks. Out: a request head.
 * In: a response head (status line and headers, at most 64 KiB), the body's framing (none,
 * Content-Length, chunked, or until the connection closes) and an incremental decoder for it
 * that takes bytes as they arrive, in any split.
 */

/** A response head larger than this is refused (S3 answers have a few hundred bytes). */
export const HEAD_LIMIT = 64 * 1024;
/** A chunk-size line (size and extensions) longer than this is refused. */
const CHUNK_LINE_LIMIT = 4096;

export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Latin-1 both ways: header bytes are bytes (as fetch's ByteString). */
function latin1(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new TypeError(`a header holds a character outside Latin-1: ${s}`);
    out[i] = c;
  }
  return out;
}

function text(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return s;
}

/** `METHOD target HTTP/1.1`, the headers, the empty line. Refuses what would split a line. */
export function renderHead(
  method: string,
  target: string,
  headers: Iterable<readonly [string, string]>,
): Uint8Array {
  if (!TOKEN.test(method)) throw new TypeError(`invalid HTTP method ${JSON.stringify(method)}`);
  if (!/^\/[\x21-\x7e]*$/.test(target)) {
    throw new TypeError(`invalid request target ${JSON.stringify(target)}`);
  }
  let s = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) {
    if (!TOKEN.test(name)) throw new TypeError(`invalid header name ${JSON.stringify(name)}`);
    if (/[\r\n\0]/.test(value)) {
      throw new TypeError(`header ${name} has a line break in its value ${JSON.stringify(value)}`);
    }
    s += `${name}: ${value.trim()}\r\n`;
  }
  return latin1(s + "\r\n");
}

/** The offset just past the head's closing CRLFCRLF, or -1. `from`: bytes already searched. */
export function findHeadEnd(buf: Uint8Array, from = 0): number {
  for (let i = Math.max(0, from - 3); i + 3 < buf.length; i++) {
    if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
      return i + 4;
    }
  }
  return -1;
}

export interface ResponseHead {
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  status: number;
  reason: string;
  /** Names in lower case, in order, repeats kept. */
  headers: [string, string][];
}

/** Parse a complete head (up to and including the empty line). */
export function parseHead(bytes: Uint8Array): ResponseHead {
  if (bytes.length > HEAD_LIMIT) {
    throw new ProtocolError(`response head larger than ${HEAD_LIMIT} bytes`);
  }
  const lines = text(bytes).split("\r\n");
  const statusLine = lines[0] ?? "";
  const m = statusLine.match(/^HTTP\/1\.([01]) ([1-5]\d\d)(?: ([\t\x20-\x7e\x80-\xff]*))?$/);
  if (!m) throw new ProtocolError(`bad status line ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue; // the closing empty line(s)
    const h = line.match(/^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/);
    if (!h || /[\0\r\n]/.test(h[2]!)) {
      throw new ProtocolError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    }
    headers.push([h[1]!.toLowerCase(), h[2]!]);
  }
  return { minor: Number(m[1]), status: Number(m[2]), reason: m[3] ?? "", headers };
}

export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

function values(head: ResponseHead, name: string): string[] {
  return head.headers.filter(([n]) => n === name).flatMap(([, v]) => v.split(","))
    .map((v) => v.trim().toLowerCase()).filter((v) => v !== "");
}

/**
 * How the body is delimited (RFC 9112 §6.3) and whether the connection can carry another
 * request after it. No body for HEAD, 1xx, 204 and 304.
 */
export function framing(method: string, head: ResponseHead): { body: Framing; reusable: boolean } {
  const connection = values(head, "connection");
  let reusable = head.minor === 1 && !connection.includes("close");
  if (method === "HEAD" || head.status < 200 || head.status === 204 || head.status === 304) {
    return { body: { kind: "none" }, reusable };
  }
  const coding = values(head, "transfer-encoding");
  const lengths = values(head, "content-length");
  if (coding.length) {
    if (coding.length !== 1 || coding[0] !== "chunked") {
      throw new ProtocolError(`unsupported transfer coding ${coding.join(", ")}`);
    }
    // Both framings at once smells of a smuggling proxy: read it, never reuse the connection.
    if (lengths.length) reusable = false;
    return { body: { kind: "chunked" }, reusable };
  }
  if (lengths.length) {
    if (!lengths.every((v) => v === lengths[0]) || !/^\d{1,15}$/.test(lengths[0]!)) {
      throw new ProtocolError(`bad Content-Length ${lengths.join(", ")}`);
    }
    const length = Number(lengths[0]);
    return { body: length === 0 ? { kind: "none" } : { kind: "length", length }, reusable };
  }
  return { body: { kind: "close" }, reusable: false };
}

export interface Decoded {
  /** Body bytes found in the input (views into it). */
  data: Uint8Array[];
  /** The body ended in this input. */
  done: boolean;
  /** Bytes of the input past the body's end (a misbehaving peer: the connection is not reused). */
  extra: number;
}

export interface BodyDecoder {
  push(input: Uint8Array): Decoded;
  /** The connection ended: is that the body's end (until-close framing)? */
  readonly endsAtClose: boolean;
}

class LengthDecoder implements BodyDecoder {
  #left: number;
  readonly endsAtClose = false;

  constructor(length: number) {
    this.#left = length;
  }

  push(input: Uint8Array): Decoded {
    const n = Math.min(this.#left, input.length);
    this.#left -= n;
    return {
      data: n ? [n === input.length ? input : input.subarray(0, n)] : [],
      done: this.#left === 0,
      extra: input.length - n,
    };
  }
}

class CloseDecoder implements BodyDecoder {
  readonly endsAtClose = true;

  push(input: Uint8Array): Decoded {
    return { data: input.length ? [input] : [], done: false, extra: 0 };
  }
}

/** Chunked transfer coding, fed in arbitrary pieces; trailers are read and dropped. */
export class ChunkedDecoder implements BodyDecoder {
  readonly endsAtClose = false;
  #state: "size" | "data" | "data-cr" | "data-lf" | "trailer" | "done" = "size";
  #line = "";
  #left = 0;
  #trailerBytes = 0;

  push(input: Uint8Array): Decoded {
    const data: Uint8Array[] = [];
    let i = 0;
    while (i < input.length && this.#state !== "done") {
      switch (this.#state) {
        case "data": {
          const n = Math.min(this.#left, input.length - i);
          data.push(input.subarray(i, i + n));
          i += n;
          this.#left -= n;
          if (this.#left === 0) this.#state = "data-cr";
          break;
        }
        case "data-cr":
        case "data-lf": {
          const want = this.#state === "data-cr" ? 13 : 10;
          if (input[i++] !== want) throw new ProtocolError("chunk data not followed by CRLF");
          this.#state = this.#state === "data-cr" ? "data-lf" : "size";
          break;
        }
        case "size":
        case "trailer": {
          const lf = input.indexOf(10, i);
          const end = lf === -1 ? input.length : lf;
          this.#line += text(input.subarray(i, end));
          i = end;
          const limit = this.#state === "size" ? CHUNK_LINE_LIMIT : HEAD_LIMIT - this.#trailerBytes;
          if (this.#line.length > limit) {
            throw new ProtocolError(
              this.#state === "size" ? "chunk size line too long" : "chunked trailer too large",
            );
          }
          if (lf === -1) break;
          i++; // the LF
          if (!this.#line.endsWith("\r")) throw new ProtocolError("chunked line not ended by CRLF");
          const line = this.#line.slice(0, -1);
          this.#line = "";
          if (this.#state === "trailer") {
            this.#trailerBytes += line.length + 2;
            if (line === "") this.#state = "done";
            break;
          }
          const m = line.match(/^([0-9A-Fa-f]{1,13})[ \t]*(;.*)?$/);
          if (!m) throw new ProtocolError(`bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
          this.#left = parseInt(m[1]!, 16);
          this.#state = this.#left === 0 ? "trailer" : "data";
          break;
        }
      }
    }
    const done = this.#state === "done";
    return { data, done, extra: done ? input.length - i : 0 };
  }
}

export function decoderFor(body: Framing): BodyDecoder {
  switch (body.kind) {
    case "length":
      return new LengthDecoder(body.length);
    case "chunked":
      return new ChunkedDecoder();
    case "close":
      return new CloseDecoder();
    case "none":
      return new LengthDecoder(0);
  }
}
