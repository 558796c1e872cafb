/**
 * PURE: this machine's clock against the store's. A microVM may boot with a wrong clock, and
 * S3 refuses a signature dated more than 15 minutes off (RequestTimeTooSkewed). Every answer
 * carries the store's `Date` (1 s resolution): once it differs from ours by a minute or more,
 * requests are signed with the store's time instead (said once, with the size of the
 * difference); once the clock agrees again (within 15 s: NTP caught up), ours is used again.
 */

export interface SkewOptions {
  /** Correct from this difference up (default 60 s). */
  thresholdMs?: number;
  /** Stop correcting below this difference (default 15 s). */
  settleMs?: number;
  warn?: (line: string) => void;
  info?: (line: string) => void;
}

export class ClockSkew {
  /** Added to our clock when signing. */
  offsetMs = 0;
  readonly #o: Required<Omit<SkewOptions, "warn" | "info">> & SkewOptions;
  readonly #origin: string;
  #warned = false;

  /** `origin`: the store, as messages name it. */
  constructor(origin: string, o: SkewOptions = {}) {
    this.#origin = origin;
    this.#o = { thresholdMs: 60_000, settleMs: 15_000, ...o };
  }

  /** The store's difference from our clock as last measured (ms; positive: ours is behind). */
  measured = 0;

  /**
   * An answer's Date header, received when our clock read `at` (the midpoint of the exchange
   * is close enough at 1 s resolution). True when the correction changed.
   */
  observe(date: string | null | undefined, at: number): boolean {
    if (!date) return false;
    const theirs = Date.parse(date);
    if (Number.isNaN(theirs)) return false;
    // The header drops milliseconds: compare with ours rounded the same way.
    const skew = theirs - Math.floor(at / 1000) * 1000;
    this.measured = skew;
    const before = this.offsetMs;
    if (Math.abs(skew) >= this.#o.thresholdMs) this.offsetMs = skew;
    else if (Math.abs(skew) < this.#o.settleMs) this.offsetMs = 0;
    if (this.offsetMs === before) return false;
    if (this.offsetMs !== 0 && !this.#warned) {
      this.#warned = true;
      this.#o.warn?.(
        `this machine's clock is ${
          describeSkew(skew)
        } ${this.#origin}'s; signing S3 requests with the store's time (fix the clock: NTP, or the VM's clock source)`,
      );
    } else if (this.offsetMs === 0) {
      this.#o.info?.(`this machine's clock agrees with ${this.#origin}'s again`);
    }
    return true;
  }
}

/** "3600 s behind", "95 s ahead of". */
export function describeSkew(skewMs: number): string {
  const s = Math.round(Math.abs(skewMs) / 1000);
  return skewMs > 0 ? `${s} s behind` : `${s} s ahead of`;
}
