/**
 * EFFECT: every line from postgres, PgBouncer and the supervisor goes through here: rate
 * limited (token bucket), queued (bounded), and written to a sink by a separate loop. Nothing
 * on the way in ever waits for the sink, so a child's stderr pipe is always drained at once; a
 * slow or dead sink costs dropped lines (announced in-band), never a stalled postgres.
 */
import { TokenBucket } from "./bucket.ts";
import { droppedMarker } from "./frame.ts";
import { pipeChunks } from "./lines.ts";

export interface LogRecord {
  source: string;
  line: string;
  ts: number;
}

/** Where records go (stderr, vsock). `write` may be slow; it is never called concurrently. */
export interface LogSink {
  write(records: LogRecord[]): Promise<void>;
  close(): void;
}

export interface ForwarderOptions {
  rate: number;
  burst: number;
  maxLineBytes: number;
  /** Records held while the sink is busy; beyond this, lines are dropped. */
  queueLimit: number;
  now?: () => number;
}

export const defaultForwarderOptions: ForwarderOptions = {
  rate: 500,
  burst: 1000,
  maxLineBytes: 8192,
  queueLimit: 4096,
};

export class LogForwarder {
  readonly #o: ForwarderOptions;
  readonly #now: () => number;
  readonly #bucket: TokenBucket;
  #sink: LogSink;
  #queue: LogRecord[] = [];
  #dropped = 0;
  #droppedTotal = 0;
  #draining = false;
  #idle: (() => void)[] = [];
  /** Largest queue length seen (tests check that memory stays bounded). */
  maxQueued = 0;

  constructor(sink: LogSink, options: Partial<ForwarderOptions> = {}) {
    this.#o = { ...defaultForwarderOptions, ...options };
    this.#now = this.#o.now ?? (() => performance.now());
    this.#bucket = new TokenBucket(this.#o.rate, this.#o.burst, this.#now());
    this.#sink = sink;
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  setSink(sink: LogSink): void {
    const old = this.#sink;
    this.#sink = sink;
    old.close();
  }

  /** One line from `source`; never waits. */
  write(source: string, line: string): void {
    const now = this.#now();
    if (!this.#bucket.take(now) || this.#queue.length >= this.#o.queueLimit) {
      this.#dropped++;
      this.#droppedTotal++;
      return;
    }
    if (this.#dropped > 0) {
      this.#queue.push({ source: "beyond-pg", line: droppedMarker(this.#dropped), ts: Date.now() });
      this.#dropped = 0;
    }
    this.#queue.push({ source, line, ts: Date.now() });
    if (this.#queue.length > this.maxQueued) this.maxQueued = this.#queue.length;
    if (!this.#draining) this.#drain();
  }

  /**
   * Read a child's stream to its end, line by line (cut at maxLineBytes). `tap` sees every
   * line, except that when a flood is being dropped it sees only the last `tapLines` of each
   * chunk (all a tail needs): dropped lines are counted, not decoded, which is what keeps a
   * postgres with log_statement=all cheap to forward.
   */
  pump(
    source: string,
    stream: ReadableStream<Uint8Array>,
    tap?: (line: string) => void,
    tapLines = 8,
  ): Promise<void> {
    const each = (line: string) => {
      tap?.(line);
      this.write(source, line);
    };
    return pipeChunks(stream, (chunk, splitter) => {
      // Dropping anyway (no token for even one line, or the queue is full): count the lines
      // before the last `tapLines`, and split only those.
      if (
        this.#bucket.available(this.#now()) < 1 || this.#queue.length >= this.#o.queueLimit
      ) {
        let cut = chunk.length;
        for (let i = 0; i <= tapLines && cut > 0; i++) cut = chunk.lastIndexOf(10, cut - 1);
        if (cut > 0) {
          let n = 0;
          for (let i = chunk.indexOf(10); i !== -1 && i <= cut; i = chunk.indexOf(10, i + 1)) n++;
          this.#dropped += n;
          this.#droppedTotal += n;
          splitter.reset();
          chunk = chunk.subarray(cut + 1);
        }
      }
      for (const line of splitter.push(chunk)) each(line);
    }, this.#o.maxLineBytes).then((rest) => rest.forEach(each));
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length) {
        const batch = this.#queue;
        this.#queue = [];
        try {
          await this.#sink.write(batch);
        } catch {
          this.#dropped += batch.length;
          this.#droppedTotal += batch.length;
        }
      }
    } finally {
      this.#draining = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  /** Resolves when everything queued has been handed to the sink. */
  flush(): Promise<void> {
    if (!this.#draining && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }
}
