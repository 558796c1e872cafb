/** EFFECT: log sinks — our stderr (pass-through), or vsock frames to the host. */
import { encodeLogFrame } from "./frame.ts";
import type { LogRecord, LogSink } from "./forwarder.ts";
import { type FfiConn, ffiConnect } from "../../ffi/mod.ts";

const enc = new TextEncoder();

export function formatLine(r: LogRecord): string {
  return `[${r.source}] ${r.line}\n`;
}

/** Our stderr; async writes, so a slow reader of our stderr slows only this loop. */
export class StderrSink implements LogSink {
  async write(records: LogRecord[]): Promise<void> {
    const bytes = enc.encode(records.map(formatLine).join(""));
    let off = 0;
    while (off < bytes.length) off += await Deno.stderr.write(bytes.subarray(off));
  }

  close(): void {}
}

/** vsock to the host (CID/port from settings); frames as in frame.ts. */
export class VsockSink implements LogSink {
  readonly #conn: FfiConn;
  readonly #onLost: () => void;
  #seq = 0;
  #lost = false;

  private constructor(conn: FfiConn, onLost: () => void) {
    this.#conn = conn;
    this.#onLost = onLost;
  }

  /** `onLost` runs once when a write fails (the receiver went away). */
  static async connect(
    cid: number,
    port: number,
    timeoutMs = 1000,
    onLost: () => void = () => {},
  ): Promise<VsockSink> {
    return new VsockSink(await ffiConnect({ family: "vsock", cid, port }, timeoutMs), onLost);
  }

  async write(records: LogRecord[]): Promise<void> {
    const frames = records.map((r) =>
      encodeLogFrame({
        type: "UserProcessStreamData",
        stream: "stderr",
        source: r.source,
        seq: this.#seq++,
        ts: new Date(r.ts).toISOString(),
        data: r.line,
      })
    );
    const total = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let off = 0;
    for (const f of frames) (total.set(f, off), (off += f.length));
    try {
      await this.#conn.writeAll(total, 2000);
    } catch (error) {
      if (!this.#lost) {
        this.#lost = true;
        queueMicrotask(this.#onLost);
      }
      throw error;
    }
  }

  close(): void {
    this.#conn.close();
  }
}
