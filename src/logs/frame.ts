/**
 * PURE: the log frame sent over vsock (documented in ARCHITECTURE.md, "Log frames"):
 *
 *   u32 big-endian length N, then N bytes of UTF-8 JSON:
 *   {"type": "UserProcessStreamData", "stream": "stderr", "source": "postgres",
 *    "seq": 17, "ts": "2026-11-23T13:00:00.000Z", "data": "<one line, no newline>"}
 *
 * `source` is postgres, pgbouncer or beyond-pg; `seq` counts frames per connection, so a
 * receiver can tell lost frames from dropped lines (drops are announced in-band by a
 * "[beyond-pg: dropped N log lines]" frame from source beyond-pg).
 */

export interface LogFrame {
  type: "UserProcessStreamData";
  stream: "stderr";
  source: string;
  seq: number;
  ts: string;
  data: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeLogFrame(frame: LogFrame): Uint8Array<ArrayBuffer> {
  const body = enc.encode(JSON.stringify(frame));
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length, false);
  out.set(body, 4);
  return out;
}

/** Incremental decoder for a stream of log frames (what a host-side receiver runs). */
export class LogFrameDecoder {
  #buf = new Uint8Array(0);

  push(chunk: Uint8Array): LogFrame[] {
    const next = new Uint8Array(this.#buf.length + chunk.length);
    next.set(this.#buf);
    next.set(chunk, this.#buf.length);
    this.#buf = next;
    const out: LogFrame[] = [];
    while (this.#buf.length >= 4) {
      const len = new DataView(this.#buf.buffer, this.#buf.byteOffset).getUint32(0, false);
      if (this.#buf.length < 4 + len) break;
      out.push(JSON.parse(dec.decode(this.#buf.subarray(4, 4 + len))) as LogFrame);
      this.#buf = this.#buf.slice(4 + len);
    }
    return out;
  }
}

export function droppedMarker(n: number): string {
  return `[beyond-pg: dropped ${n} log lines]`;
}
