/**
 * PURE: bytes → lines, each at most `maxBytes` (longer lines are cut and marked), with memory
 * bounded by `maxBytes` however long a line runs before its newline.
 */
export const TRUNCATION_MARK = " …[truncated]";

export class LineSplitter {
  readonly #max: number;
  readonly #decoder = new TextDecoder();
  #parts: Uint8Array[] = [];
  #size = 0;
  #skipping = false;

  constructor(maxBytes: number) {
    this.#max = maxBytes;
  }

  /** Feed a chunk; returns the complete lines it finished. */
  push(chunk: Uint8Array): string[] {
    const lines: string[] = [];
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(10, start);
      const end = nl === -1 ? chunk.length : nl;
      // The common case, a whole line inside this chunk: decode it in place (no copies; this
      // runs per line of a chatty postgres, in V8's interpreter).
      if (nl !== -1 && this.#size === 0 && !this.#skipping && end - start <= this.#max) {
        lines.push(
          this.#decoder.decode(chunk.subarray(start, chunk[end - 1] === 13 ? end - 1 : end)),
        );
        start = nl + 1;
        continue;
      }
      if (!this.#skipping) {
        const room = this.#max - this.#size;
        const piece = chunk.subarray(start, Math.min(end, start + room));
        if (piece.length) {
          this.#parts.push(piece.slice());
          this.#size += piece.length;
        }
        if (end - start > room) {
          lines.push(this.#take() + TRUNCATION_MARK);
          this.#skipping = true;
        }
      }
      if (nl === -1) break;
      if (this.#skipping) this.#skipping = false;
      else lines.push(this.#take());
      start = nl + 1;
    }
    return lines;
  }

  /** Forget a partial line (its bytes were counted elsewhere). */
  reset(): void {
    this.#parts = [];
    this.#size = 0;
    this.#skipping = false;
  }

  /** At end of stream: the last partial line, if any. */
  flush(): string[] {
    if (this.#skipping) {
      this.#skipping = false;
      return [];
    }
    return this.#size ? [this.#take()] : [];
  }

  #take(): string {
    const all = new Uint8Array(this.#size);
    let off = 0;
    for (const p of this.#parts) (all.set(p, off), (off += p.length));
    this.#parts = [];
    this.#size = 0;
    // A cut may split a UTF-8 sequence; the decoder replaces the stray bytes.
    return this.#decoder.decode(all).replace(/\r$/, "");
  }
}
