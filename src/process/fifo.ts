/**
 * EFFECT: a child's output through a named pipe that we read with blocking reads (Deno's
 * thread pool) instead of a pipe in the event loop's epoll set. With a pipe, every write of
 * the child wakes our event loop: postgres with log_statement=all writes ~35,000 lines a
 * second, one write each, and those wake-ups alone cost the supervisor a fifth of a core.
 * Here nothing wakes us between reads; the reads themselves come in coalesced (lines.ts).
 *
 * We hold the FIFO open for reading and writing, so opening it for writing never blocks and
 * reading never sees an early end; `end()` writes one NUL byte (never in a log) after the
 * child has exited, and the reader stops there.
 */

import { exists } from "../boot/files.ts";

let serial = 0;

/**
 * Remove FIFOs left in `dir` by a supervisor that was killed (their names carry its pid) whose
 * process is gone. A FIFO's path is only needed to open it: children that still hold one open
 * are unaffected.
 */
export function removeStaleFifos(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const e of entries) {
    const pid = Number(e.name.match(/\.(\d+)\.\d+\.fifo$/)?.[1]);
    if (!pid || pid === Deno.pid || exists(`/proc/${pid}`)) continue;
    try {
      Deno.removeSync(`${dir}/${e.name}`);
    } catch { /* gone */ }
  }
}

export class FifoOutput {
  readonly path: string;
  readonly #file: Deno.FsFile;
  /** Our own write end, for the end marker (a write on #file would queue behind its read). */
  readonly #writer: Deno.FsFile;
  #ending = false;

  /** Throws when the FIFO cannot be made (the caller falls back to a plain pipe). */
  constructor(dir: string, name: string, owner?: { uid: number; gid: number }) {
    this.path = `${dir}/${name}.${Deno.pid}.${++serial}.fifo`;
    const made = new Deno.Command("mkfifo", { args: ["-m", "600", this.path], stderr: "piped" })
      .outputSync();
    if (!made.success) {
      throw new Error(`mkfifo ${this.path}: ${new TextDecoder().decode(made.stderr).trim()}`);
    }
    try {
      if (owner) Deno.chownSync(this.path, owner.uid, owner.gid);
      this.#file = Deno.openSync(this.path, { read: true, write: true });
    } catch (error) {
      Deno.removeSync(this.path);
      throw error;
    }
    // Opening for writing does not block: #file is a reader.
    this.#writer = Deno.openSync(this.path, { write: true });
  }

  /** Everything written, chunk by chunk, up to `end()`. */
  stream(): ReadableStream<Uint8Array> {
    return ReadableStream.from(this.#chunks());
  }

  async *#chunks(): AsyncGenerator<Uint8Array> {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await this.#file.read(buf);
      if (n === null) return;
      const chunk = buf.slice(0, n);
      const nul = this.#ending ? chunk.indexOf(0) : -1;
      if (nul === -1) {
        yield chunk;
        continue;
      }
      if (nul > 0) yield chunk.subarray(0, nul);
      return;
    }
  }

  /** The child has exited: the reader stops after what it wrote so far. */
  end(): void {
    this.#ending = true;
    // Written on the thread pool: when the FIFO is full (the child filled it and our reader is
    // between reads), a synchronous write would block the event loop, and with it the reader.
    this.#writer.write(new Uint8Array([0])).catch(() => {/* closed */});
  }

  close(): void {
    for (const f of [this.#writer, this.#file]) {
      try {
        f.close();
      } catch { /* closed */ }
    }
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
  }
}
