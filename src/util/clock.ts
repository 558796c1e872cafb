/**
 * Time as a seam: the real clock, or a fake one that unit tests advance by hand (policy and
 * queues are then tested in milliseconds, without sleeping).
 */
export interface Clock {
  now(): number;
  /** Run `fn` every `ms`; returns a handle for `cancel`. */
  every(ms: number, fn: () => void): number;
  /** Run `fn` once after `ms`. */
  after(ms: number, fn: () => void): number;
  cancel(handle: number): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  every: (ms, fn) => Number(setInterval(fn, ms)),
  after: (ms, fn) => Number(setTimeout(fn, ms)),
  cancel: (h) => {
    clearInterval(h);
    clearTimeout(h);
  },
};

/** A clock that moves only when told to (tests). */
export class FakeClock implements Clock {
  #now: number;
  #next = 1;
  readonly #timers = new Map<number, { at: number; every?: number; fn: () => void }>();

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  every(ms: number, fn: () => void): number {
    const h = this.#next++;
    this.#timers.set(h, { at: this.#now + ms, every: ms, fn });
    return h;
  }

  after(ms: number, fn: () => void): number {
    const h = this.#next++;
    this.#timers.set(h, { at: this.#now + ms, fn });
    return h;
  }

  cancel(handle: number): void {
    this.#timers.delete(handle);
  }

  /** Move time forward, firing what falls due, in order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.entries()].filter(([, t]) => t.at <= end)
        .sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      const [h, t] = due;
      this.#now = t.at;
      if (t.every) t.at += t.every;
      else this.#timers.delete(h);
      t.fn();
    }
    this.#now = end;
  }
}
