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
 *
 * The FIFOs live in a directory only root can write (postgres gets write permission on its own
 * FIFO only), so nothing can be swapped in between making a FIFO and handing it over.
 */

import type { RootTree } from "../fs/tree.ts";
import { exists } from "../util/fs.ts";

let serial = 0;

/**
 * Remove FIFOs left in `dir` by a supervisor that was killed (their names carry its pid) whose
 * process is gone. A FIFO's path is only needed to open it: children that still hold one open
 * are unaffected.
 */
export function removeStaleFifos(dir: RootTree): void {
  for (const e of dir.list(dir.base)) {
    const pid = Number(e.name.match(/\.(\d+)\.\d+\.fifo$/)?.[1]);
    if (!pid || pid === Deno.pid || exists(`/proc/${pid}`)) continue;
    dir.remove(`${dir.base}/${e.name}`, false);
  }
}

export class FifoOutput {
  readonly path: string;
  readonly #dir: RootTree;
  readonly #file: Deno.FsFile;
  /** Our own write end, for the end marker (a write on #file would queue behind its read). */
  readonly #writer: Deno.FsFile;
  #ending = false;

  /** Throws when the FIFO cannot be made (the caller falls back to a plain pipe). */
  constructor(dir: RootTree, name: string, owner?: { uid: number; gid: number }) {
    this.#dir = dir;
    this.path = `${dir.base}/${name}.${Deno.pid}.${++serial}.fifo`;
    dir.mkfifo(this.path, 0o600);
    try {
      dir.give(this.path, owner, 0o600);
      this.#file = dir.open(this.path, { read: true, write: true });
    } catch (error) {
      dir.remove(this.path, false);
      throw error;
    }
    // Opening for writing does not block: #file is a reader.
    this.#writer = dir.open(this.path, { write: true });
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
    this.#dir.remove(this.path, false);
  }
}
