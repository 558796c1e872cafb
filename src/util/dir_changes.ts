/**
 * EFFECT: wake-ups when something in one directory changes (inotify, through Deno.watchFs), for
 * a loop that polls a file or a socket there: it looks again at once instead of on its next
 * tick, and in between it costs nothing. A readiness loop polling every 3 ms spent ~0.4 ms of
 * the supervisor's CPU per look, ~70 looks while postgres starts, on the cores postgres starts
 * on. Without a watch (no inotify, the directory gone) every wait is the plain timeout, so the
 * loop polls as it would have. The events only say "look again": what the loop reads there it
 * reads with its own checks, as before.
 */
import { sleep } from "./sleep.ts";

export class DirChanges {
  #watcher: Deno.FsWatcher | undefined;
  #events: AsyncIterator<Deno.FsEvent> | undefined;
  /** A read of the next event is under way. */
  #reading = false;
  /** An event came that no wait has seen yet. */
  #changed = false;
  /** The wait under way, woken by an event. */
  #wake: (() => void) | undefined;

  private constructor(watcher: Deno.FsWatcher | undefined) {
    this.#watcher = watcher;
    this.#events = watcher?.[Symbol.asyncIterator]();
  }

  /** Watch `dir` (not its subdirectories); never throws. */
  static open(dir: string): DirChanges {
    try {
      return new DirChanges(Deno.watchFs(dir, { recursive: false }));
    } catch {
      return new DirChanges(undefined);
    }
  }

  /** Whether changes wake the waits (else they are plain timeouts). */
  get watching(): boolean {
    return this.#events !== undefined;
  }

  /**
   * Until something changes in the directory, `ms` pass, or `signal` aborts. A change that came
   * since the last wait ends it at once.
   */
  async wait(ms: number, signal?: AbortSignal): Promise<void> {
    this.#read();
    if (this.#changed) {
      this.#changed = false;
      return;
    }
    const done = new AbortController();
    const stop = () => done.abort();
    signal?.addEventListener("abort", stop, { once: true });
    this.#wake = stop;
    try {
      await sleep(ms, done.signal);
    } finally {
      this.#wake = undefined;
      signal?.removeEventListener("abort", stop);
    }
    this.#changed = false;
  }

  /** One event read at a time; each wakes the wait under way, or the next one. */
  #read(): void {
    const events = this.#events;
    if (!events || this.#reading) return;
    this.#reading = true;
    events.next().then((r) => r.done, () => true).then((ended) => {
      this.#reading = false;
      if (ended) this.#stopWatching();
      this.#changed = true;
      this.#wake?.();
      if (!ended && this.#events) this.#read();
    });
  }

  #stopWatching(): void {
    this.#events = undefined;
    try {
      this.#watcher?.close();
    } catch { /* closed */ }
    this.#watcher = undefined;
  }

  close(): void {
    this.#stopWatching();
    this.#wake = undefined;
  }
}
