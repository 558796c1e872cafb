/**
 * EFFECT: every line from postgres, PgBouncer and the supervisor goes through here: rate
 * limited (token bucket), queued (bounded), and written to a sink by a separate loop. Nothing
 * on the way in ever waits for the sink, so a child's stderr pipe is always drained at once; a
 * slow or dead sink costs dropped lines (announced in-band), never a stalled postgres.
 *
 * The supervisor's own lines (source "beyond-pg") have a budget of their own: they are never
 * refused by the children's rate limit or queue, so a postgres flood cannot drop a supervisor
 * warning. They are bounded by their own small queue (`ownQueueLimit`), and only a sink that
 * stays behind for that many of them drops any.
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
  /** Children's records held while the sink is busy; beyond this, their lines are dropped. */
  queueLimit: number;
  /** The supervisor's own records held while the sink is busy (not rate limited). */
  ownQueueLimit: number;
  now?: () => number;
}

export const defaultForwarderOptions: ForwarderOptions = {
  rate: 500,
  burst: 1000,
  maxLineBytes: 8192,
  queueLimit: 4096,
  ownQueueLimit: 1024,
};

/** The supervisor's own lines. */
export const OWN_SOURCE = "beyond-pg";

export class LogForwarder {
  readonly #o: ForwarderOptions;
  readonly #now: () => number;
  readonly #bucket: TokenBucket;
  #sink: LogSink;
  /** Records in order, both kinds; the counts say how many of each it holds. */
  #queue: LogRecord[] = [];
  #childQueued = 0;
  #ownQueued = 0;
  #dropped = 0;
  #ownDroppedTotal = 0;
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

  /** The supervisor's own lines dropped (only behind a sink that stays stalled). */
  get ownDroppedTotal(): number {
    return this.#ownDroppedTotal;
  }

  setSink(sink: LogSink): void {
    const old = this.#sink;
    this.#sink = sink;
    old.close();
  }

  /** One line from `source`; never waits. The supervisor's own lines skip the rate limit. */
  write(source: string, line: string): void {
    if (source === OWN_SOURCE) this.#writeOwn(line);
    else this.#writeChild(source, line);
  }

  #writeChild(source: string, line: string): void {
    if (!this.#bucket.take(this.#now()) || this.#childQueued >= this.#o.queueLimit) {
      this.#dropped++;
      this.#droppedTotal++;
      return;
    }
    this.#announceDrops();
    this.#childQueued++;
    this.#push({ source, line, ts: Date.now() });
  }

  #writeOwn(line: string): void {
    // One slot is kept for the drop marker.
    if (this.#ownQueued >= this.#o.ownQueueLimit - (this.#dropped > 0 ? 1 : 0)) {
      this.#dropped++;
      this.#droppedTotal++;
      this.#ownDroppedTotal++;
      return;
    }
    this.#announceDrops();
    this.#ownQueued++;
    this.#push({ source: OWN_SOURCE, line, ts: Date.now() });
  }

  /** "[beyond-pg: dropped N log lines]" before the next line that is kept. */
  #announceDrops(): void {
    if (this.#dropped === 0) return;
    this.#ownQueued++;
    this.#queue.push({ source: OWN_SOURCE, line: droppedMarker(this.#dropped), ts: Date.now() });
    this.#dropped = 0;
  }

  #push(record: LogRecord): void {
    this.#queue.push(record);
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
    // A child's stream is a child's, whatever its name: always under the rate limit.
    const each = (line: string) => {
      tap?.(line);
      this.#writeChild(source, line);
    };
    return pipeChunks(stream, (chunk, splitter) => {
      // Dropping anyway (no token for even one line, or the queue is full): count the lines
      // before the last `tapLines`, and split only those.
      if (
        this.#bucket.available(this.#now()) < 1 || this.#childQueued >= this.#o.queueLimit
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
        this.#childQueued = 0;
        this.#ownQueued = 0;
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
