/**
 * EFFECT: pg_receivewal, kept running by the same child loop as postgres and PgBouncer
 * (supervise/child_loop.ts): `--synchronous` (every write is flushed before it is reported, so
 * the primary may count this sink in its synchronous quorum; with libeatmydata preloaded, every
 * write is reported at once and sink/flusher.ts flushes it), `--slot` (the primary keeps our
 * WAL while we are away: a restart resumes where the directory ends, with no gap), `--no-loop`
 * (a lost connection exits, and the loop's backoff decides when to try again). The password
 * comes from a passfile; nothing secret is on its command line or in its environment.
 */
import { hookProblem } from "../boot/hooks.ts";
import { upstreamConninfo } from "../config/replication_conf.ts";
import { pipeLines } from "../logs/lines.ts";
import { Child, type ChildHandle, type OutputPump } from "../supervise/child.ts";
import { ChildLoop } from "../supervise/child_loop.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";

export interface ReceiverOptions {
  bin: string;
  dir: string;
  name: string;
  primary: { host: string; port: number };
  passfile: string;
  /**
   * BEYOND_PG_SINK_ACK=write: this library (libeatmydata) preloaded into pg_receivewal makes its
   * fsync a no-op, so `--synchronous` reports WAL once written; the sink's flusher puts it on
   * disk. (pg_receivewal refuses `--synchronous` with `--no-sync`.)
   */
  noSyncPreload?: string;
  /** Before each start of pg_receivewal (the store removes a torn `.partial`). */
  beforeStart?: () => void;
}

export interface ReceiverState {
  up: boolean;
  /** Connections made after the first. */
  reconnects: number;
  starts: number;
  lastError: string | undefined;
  /** The last error was a full disk. */
  diskFull: boolean;
}

/** A line worth a status: pg_receivewal's error, with the fix when we know it. */
export function explain(line: string, dir: string): string {
  const text = line.replace(/^pg_receivewal: (error: |fatal: )?/, "");
  if (/No space left on device/i.test(text)) {
    return `disk full: ${text}; free space in ${dir} (or lower BEYOND_PG_SINK_KEEP_MB) — the primary's commits wait meanwhile if this sink is needed for the quorum`;
  }
  if (/replication slot .* does not exist/i.test(text)) {
    return `${text}; the primary creates a slot for each sink in BEYOND_PG_WAL_SINK: add this sink's name there`;
  }
  if (/password authentication failed|no pg_hba\.conf entry/i.test(text)) {
    return `${text}; check BEYOND_PG_REPLICATION_PASSWORD and the primary's BEYOND_PG_REPLICATION_PEERS`;
  }
  return text;
}

/**
 * libeatmydata, for BEYOND_PG_SINK_ACK=write: the first candidate root may load into a child
 * (boot/hooks.ts hookProblem: a file, its own and its directories' root's, not writable by group
 * or others), or undefined.
 */
export function findNoSyncPreload(
  candidates = [
    `/usr/lib/${Deno.build.arch}-linux-gnu/libeatmydata.so.1`,
    `/usr/lib/${Deno.build.arch}-linux-gnu/libeatmydata.so`,
    "/usr/lib64/libeatmydata.so.1",
    "/usr/lib/libeatmydata.so.1",
  ],
): string | undefined {
  return candidates.find((path) => hookProblem(path) === undefined);
}

/** A run that stays up this long clears the last error. */
const CLEAR_AFTER_MS = 5000;

export class Receiver {
  readonly state: ReceiverState = {
    up: false,
    reconnects: 0,
    starts: 0,
    lastError: undefined,
    diskFull: false,
  };
  readonly #loop: ChildLoop;
  readonly #stop: AbortSignal;
  #ups = 0;
  /** This run's first telling error (a later "disconnected" does not replace it). */
  #runError: string | undefined;

  constructor(o: ReceiverOptions, stop: AbortSignal) {
    this.#stop = stop;
    const conninfo = upstreamConninfo({
      host: o.primary.host,
      port: o.primary.port,
      name: o.name,
      passfile: o.passfile,
    });
    const output: OutputPump = {
      pump: (_source, stream, tap) =>
        pipeLines(stream, (line) => {
          tap?.(line);
          if (/error|fatal|could not|should be 0 or/i.test(line)) {
            const text = explain(line, o.dir);
            log.warn(`wal-sink: ${text}`);
            const generic = /^(error: )?disconnected$/i.test(text.trim());
            if (!generic || this.#runError === undefined) this.#runError = text;
            this.state.lastError = this.#runError;
            if (/No space left/i.test(line)) this.state.diskFull = true;
          } else log.info(`pg_receivewal: ${line}`);
        }),
    };
    this.#loop = new ChildLoop(
      { name: "pg_receivewal", label: "pg_receivewal" },
      {
        launch: () => {
          this.state.starts++;
          this.#runError = undefined;
          try {
            o.beforeStart?.();
          } catch (error) {
            log.warn(`wal-sink: before starting pg_receivewal: ${String(error)}`);
          }
          return new Child({
            name: "pg_receivewal",
            cmd: o.bin,
            args: [
              "-D",
              o.dir,
              "--synchronous",
              "--slot",
              o.name,
              "--no-loop",
              "--no-password",
              "--verbose",
              "-d",
              conninfo,
            ],
            env: {
              PGAPPNAME: o.name,
              ...(o.noSyncPreload ? { LD_PRELOAD: o.noSyncPreload } : {}),
            },
            runAs: undefined,
          }, output);
        },
        waitUp: async (c: ChildHandle, s: AbortSignal) => {
          while (c.running && !s.aborted) {
            if (c.tail().some((l) => /starting log streaming/.test(l))) return true;
            await sleep(20, s);
          }
          return false;
        },
        sleep: (ms, s) => sleep(ms, s),
        now: () => performance.now(),
        failFast: () => false,
        log: { info: (l) => log.info(`wal-sink: ${l}`), error: (l) => log.warn(`wal-sink: ${l}`) },
      },
      {
        up: () => {
          this.state.reconnects = Math.max(0, ++this.#ups - 1);
          this.state.up = true;
          // A start that fails right away (a full disk) must not wipe the reason: it is
          // cleared once this run has stayed up for a while.
          const run = this.state.starts;
          const t = setTimeout(() => {
            if (this.state.up && this.state.starts === run) {
              this.state.lastError = undefined;
              this.state.diskFull = false;
            }
          }, CLEAR_AFTER_MS);
          Deno.unrefTimer(t);
        },
        down: () => (this.state.up = false),
        exited: () => (this.state.up = false),
        problem: () => {},
        quarantined: () => {},
        failed: (p) => (this.state.lastError = p),
      },
      stop,
    );
  }

  /** Start (in the background: an unreachable primary is retried with backoff). */
  start(): void {
    this.#loop.start().catch((e) => (this.state.lastError = String(e)));
  }

  async close(): Promise<void> {
    await this.#loop.halt(async (c) => {
      if (!(await c.stop("SIGTERM", 5000))) await c.stop("SIGKILL", 5000);
    });
  }

  get stopping(): boolean {
    return this.#stop.aborted;
  }
}
