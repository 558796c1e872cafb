/**
 * PURE: the PostgreSQL frontend/backend protocol (v3) messages beyond-pg needs: startup,
 * authentication (none/peer, SCRAM-SHA-256), simple query, termination. Text results only.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface BackendMessage {
  type: string;
  body: Uint8Array;
}

function frame(type: string | null, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = type === null ? 4 : 5;
  const out = new Uint8Array(head + body.length);
  const v = new DataView(out.buffer);
  if (type !== null) out[0] = type.charCodeAt(0);
  v.setInt32(type === null ? 0 : 1, 4 + body.length, false);
  out.set(body, head);
  return out;
}

function cstrings(...parts: string[]): Uint8Array {
  return enc.encode(parts.map((p) => p + "\0").join(""));
}

export function startupMessage(params: Record<string, string>): Uint8Array<ArrayBuffer> {
  const kv = Object.entries(params).flatMap(([k, v]) => [k, v]);
  const body = new Uint8Array([0, 3, 0, 0, ...cstrings(...kv), 0]); // protocol 3.0
  return frame(null, body);
}

export function queryMessage(sql: string): Uint8Array<ArrayBuffer> {
  return frame("Q", cstrings(sql));
}

export function terminateMessage(): Uint8Array<ArrayBuffer> {
  return frame("X", new Uint8Array(0));
}

export function saslInitialResponse(mechanism: string, data: string): Uint8Array<ArrayBuffer> {
  const payload = enc.encode(data);
  const body = new Uint8Array([...cstrings(mechanism), 0, 0, 0, 0, ...payload]);
  new DataView(body.buffer).setInt32(mechanism.length + 1, payload.length, false);
  return frame("p", body);
}

export function saslResponse(data: string): Uint8Array<ArrayBuffer> {
  return frame("p", enc.encode(data));
}

/** Incremental splitter of backend messages. */
export class MessageReader {
  #buf = new Uint8Array(0);

  push(chunk: Uint8Array): void {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
  }

  next(): BackendMessage | undefined {
    if (this.#buf.length < 5) return undefined;
    const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getInt32(1, false);
    if (len < 4 || len > 1 << 30) throw new Error(`protocol: bad message length ${len}`);
    if (this.#buf.length < 1 + len) return undefined;
    const msg = { type: String.fromCharCode(this.#buf[0]!), body: this.#buf.slice(5, 1 + len) };
    this.#buf = this.#buf.slice(1 + len);
    return msg;
  }
}

/** ErrorResponse / NoticeResponse fields. */
export function parseFields(body: Uint8Array): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const code = String.fromCharCode(body[i]!);
    const end = body.indexOf(0, i + 1);
    out[code] = dec.decode(body.subarray(i + 1, end));
    i = end + 1;
  }
  return out;
}

export function parseRowDescription(body: Uint8Array): string[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = v.getInt16(0, false);
  const names: string[] = [];
  let off = 2;
  for (let k = 0; k < n; k++) {
    const end = body.indexOf(0, off);
    names.push(dec.decode(body.subarray(off, end)));
    off = end + 1 + 18; // table oid, column, type oid, size, modifier, format
  }
  return names;
}

export function parseDataRow(body: Uint8Array): (string | null)[] {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const n = v.getInt16(0, false);
  const out: (string | null)[] = [];
  let off = 2;
  for (let k = 0; k < n; k++) {
    const len = v.getInt32(off, false);
    off += 4;
    if (len < 0) out.push(null);
    else {
      out.push(dec.decode(body.subarray(off, off + len)));
      off += len;
    }
  }
  return out;
}

export function authCode(body: Uint8Array): number {
  return new DataView(body.buffer, body.byteOffset, body.byteLength).getInt32(0, false);
}

export function text(body: Uint8Array): string {
  return dec.decode(body);
}
