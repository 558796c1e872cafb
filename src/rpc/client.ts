/** The control protocol's client side (used by `beyond-pg control` and the tests). */
import { ffiConnect, type SockAddr } from "../../ffi/mod.ts";
import {
  encodeFrame,
  FrameDecoder,
  MAX_RESPONSE_BYTES,
  parseResponse,
  PROTOCOL_VERSION,
  type Response,
} from "./codec.ts";
import type { ByteStream } from "./server.ts";

let nextId = 1;

export class ControlClient {
  readonly #conn: ByteStream;
  readonly #decoder = new FrameDecoder(MAX_RESPONSE_BYTES);

  private constructor(conn: ByteStream) {
    this.#conn = conn;
  }

  static async unix(path: string): Promise<ControlClient> {
    return new ControlClient(await Deno.connect({ transport: "unix", path }));
  }

  static async ffi(addr: SockAddr): Promise<ControlClient> {
    return new ControlClient(await ffiConnect(addr));
  }

  /** Send raw bytes (tests use this to speak broken protocol). */
  async sendRaw(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** The next response, or null when the server closed the connection. */
  async receive(timeoutMs = 60_000): Promise<Response | null> {
    const buf = new Uint8Array(64 * 1024);
    const until = performance.now() + timeoutMs;
    for (;;) {
      const next = this.#decoder.next();
      if (next.kind === "frame") {
        const parsed = parseResponse(next.payload);
        if (!parsed.ok) throw new Error(parsed.message);
        return parsed.value;
      }
      if (next.kind === "error") throw new Error(next.message);
      const left = until - performance.now();
      if (left <= 0) throw new Error(`no response within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const n = await Promise.race([
        this.#conn.read(buf),
        new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), left))),
      ]).finally(() => clearTimeout(timer));
      if (n === "timeout") throw new Error(`no response within ${timeoutMs} ms`);
      if (n === null) return null;
      this.#decoder.push(buf.subarray(0, n));
    }
  }

  async call(
    cmd: string,
    args: Record<string, unknown> = {},
    timeoutMs = 60_000,
  ): Promise<Response> {
    const id = nextId++;
    await this.sendRaw(encodeFrame({ v: PROTOCOL_VERSION, id, cmd, args }));
    const res = await this.receive(timeoutMs);
    if (!res) throw new Error("the control server closed the connection");
    return res;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}
