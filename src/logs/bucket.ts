/**
 * PURE: token bucket for log lines — `rate` lines per second sustained, `burst` at once.
 * Time comes from the caller (a clock in ms), so tests use a fake one.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Tokens available now (refilled to `now`). */
  available(now: number): number {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
      this.#last = now;
    }
    return this.#tokens;
  }

  /** Take one token if there is one. */
  take(now: number): boolean {
    if (this.available(now) >= 1) {
      this.#tokens -= 1;
      return true;
    }
    return false;
  }
}
