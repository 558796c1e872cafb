/**
 * The recovery point on a quiet database: commits written into a WAL segment reach the archive
 * only once postgres finishes that segment. `archive_timeout` is meant to force that, but
 * PostgreSQL 15 was seen here not to switch at all for minutes after a commit on an otherwise
 * idle server (checked with a bare initdb + pg_ctl, archive_timeout = 5). So the supervisor
 * keeps the promise itself: when a segment has held a committed write (the next transaction id
 * moved: only writing transactions take one) for `timeoutS`, it calls pg_switch_wal(). An idle
 * database is never switched (no new transaction id), so it makes no empty segments.
 */
import type { Clock } from "../util/clock.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export interface RpoPorts {
  /**
   * The next transaction id and the segment WAL is inserted into now (at a segment boundary,
   * the next one: see segmentAt).
   */
  probe(): Promise<{ nextXid: bigint; segment: string }>;
  switchWal(): Promise<void>;
}

export interface RpoState {
  segment: string;
  /** When we first saw `segment`. */
  since: number;
  /** The next xid before `segment` began (a write after it means a commit to ship). */
  xidBefore: bigint;
  lastXid: bigint;
}

/** PURE: what the keeper does at `now` with the probe's answer. */
export function rpoStep(
  s: RpoState | undefined,
  p: { nextXid: bigint; segment: string },
  now: number,
  timeoutMs: number,
): { state: RpoState; switchNow: boolean } {
  if (!s || s.segment !== p.segment) {
    // A new segment: writes since our last look may be in it (the baseline is that look). At
    // the first look nothing is known: the segment may hold commits from before we started.
    return {
      state: {
        segment: p.segment,
        since: now,
        xidBefore: s?.lastXid ?? -1n,
        lastXid: p.nextXid,
      },
      switchNow: false,
    };
  }
  const state = { ...s, lastXid: p.nextXid };
  return { state, switchNow: p.nextXid > s.xidBefore && now - s.since >= timeoutMs };
}

export class RpoKeeper {
  readonly #ports: RpoPorts;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  #state: RpoState | undefined;
  #timer: number | undefined;
  #busy = false;
  switches = 0;

  constructor(ports: RpoPorts, o: { timeoutS: number; clock: Clock }) {
    this.#ports = ports;
    this.#clock = o.clock;
    this.#timeoutMs = o.timeoutS * 1000;
  }

  /** Look every half timeout (at least every second). */
  start(): void {
    const every = Math.max(1000, Math.floor(this.#timeoutMs / 2));
    this.#timer = this.#clock.every(every, () => this.tick());
  }

  async tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const p = await this.#ports.probe();
      const step = rpoStep(this.#state, p, this.#clock.now(), this.#timeoutMs);
      this.#state = step.state;
      if (step.switchNow) {
        await this.#ports.switchWal();
        this.switches++;
        log.debug(
          `archive: switched WAL segment ${p.segment}: it held a commit for archive_timeout`,
        );
      }
    } catch (error) {
      log.debug(`archive: recovery-point check: ${errorMessage(error)}`); // down or busy: next time
    } finally {
      this.#busy = false;
    }
  }

  close(): void {
    if (this.#timer !== undefined) this.#clock.cancel(this.#timer);
  }
}

/** The segment WAL at `lsn` goes into (a boundary belongs to the segment it starts). */
export function segmentAt(lsn: bigint, segmentBytes = 16 << 20): string {
  return (lsn / BigInt(segmentBytes)).toString(16).toUpperCase().padStart(16, "0");
}
