/**
 * EFFECT: one generic loop that keeps a child running — postgres and PgBouncer today, the WAL
 * receiver next. Spawn, wait until it is up, watch it; whatever happens is an event for the
 * pure policy (policy.ts), and its action is carried out here: restart after a delay,
 * quarantine 99-user.conf, or fail. Spawning, readiness, sleeping and the clock are injected,
 * so the loop is tested with fakes (child_loop_test.ts) as well as with real processes.
 */
import type { ChildHandle } from "./child.ts";
import type { ExitStatus } from "./exit.ts";
import { type ChildAction, type ChildEvent, decide, initialPolicyState } from "./policy.ts";
import { OperatorError } from "../util/errors.ts";

export interface LoopDeps {
  /** Start the process (throws when it cannot be spawned). */
  launch(): ChildHandle;
  /** True once `child` is up; false when it exited first or `stop` aborted. */
  waitUp(child: ChildHandle, stop: AbortSignal): Promise<boolean>;
  /** Resolves true after `ms`, false as soon as `stop` aborts. */
  sleep(ms: number, stop: AbortSignal): Promise<boolean>;
  now(): number;
  /** A stop is an error, not a restart (restore before promotion). */
  failFast(): boolean;
  /** postgres only: its user config, which the policy may blame and set aside. */
  userConf?: { text(): string; quarantined(): boolean; quarantine(): string };
  log: { info(line: string): void; error(line: string): void };
}

/** What the loop tells its owner (the supervisor keeps its facts and counters from these). */
export interface LoopEvents {
  up(child: ChildHandle): void;
  /** It was up and exited (not on a requested stop). */
  down(child: ChildHandle, status: ExitStatus): void;
  /** Any exit the loop saw, up or not (for `lastExit`). */
  exited(status: ExitStatus): void;
  problem(text: string | undefined): void;
  quarantined(aside: string): void;
  /** The policy said fail after it was up (before, start() throws instead). */
  failed(problem: string): void;
}

export class ChildLoop {
  readonly name: string;
  /** How logs name it ("postgres", "PgBouncer"). */
  readonly label: string;
  readonly #deps: LoopDeps;
  readonly #events: LoopEvents;
  readonly #stop: AbortSignal;
  #state = initialPolicyState;
  #child: ChildHandle | undefined;

  constructor(
    names: { name: string; label: string },
    deps: LoopDeps,
    events: LoopEvents,
    stop: AbortSignal,
  ) {
    this.name = names.name;
    this.label = names.label;
    this.#deps = deps;
    this.#events = events;
    this.#stop = stop;
  }

  /** The process in charge now (maybe exited). */
  get child(): ChildHandle | undefined {
    return this.#child;
  }

  /**
   * Let go of the child: its exit is no longer watched (no restart), and it is no longer the
   * one in charge. The caller stops it (a generation handoff); `start()` starts a new one.
   */
  release(): ChildHandle | undefined {
    const child = this.#child;
    this.#child = undefined;
    return child;
  }

  /**
   * Stop the child on purpose (a rejoin rewinds the data directory meanwhile): no event, no
   * restart follows; start() brings it back.
   */
  async halt(stop: (child: ChildHandle) => Promise<void>): Promise<void> {
    const child = this.release();
    if (child?.running) await stop(child);
  }

  #decide(event: ChildEvent): ChildAction {
    const r = decide(this.label, this.#state, event, { failFast: this.#deps.failFast() });
    this.#state = r.state;
    return r.action;
  }

  /**
   * Start until it is up (true) or a stop was requested (false). A fail-fast failure before it
   * is up throws an OperatorError with the child's reason.
   */
  async start(): Promise<boolean> {
    const d = this.#deps;
    while (!this.#stop.aborted) {
      let child: ChildHandle;
      try {
        child = d.launch();
      } catch (error) {
        const a = this.#decide({
          kind: "spawn-failed",
          error: error instanceof Error ? error.message : String(error),
        });
        if (!(await this.#act(a, "retrying"))) return false;
        continue;
      }
      this.#child = child;
      if (await d.waitUp(child, this.#stop)) {
        this.#events.up(child);
        this.#watch(child);
        return true;
      }
      if (this.#stop.aborted) return false;
      const status = await child.exited;
      this.#events.exited(status);
      const a = this.#decide({
        kind: "start-failed",
        status,
        ranMs: d.now() - child.startedAt,
        tail: child.tail(),
        ...(d.userConf
          ? { userConf: { text: d.userConf.text(), quarantined: d.userConf.quarantined() } }
          : {}),
      });
      if (a.kind === "fail") {
        this.#events.problem(a.problem);
        throw new OperatorError(a.problem, { exitCode: 1 });
      }
      if (a.kind === "quarantine") {
        const aside = d.userConf!.quarantine();
        this.#events.quarantined(aside);
        d.log.error(
          `${this.label} cannot start with 99-user.conf (${a.problem}); moved it to ${aside} and starting without it`,
        );
        continue;
      }
      if (!(await this.#act(a, "retrying"))) return false;
    }
    return false;
  }

  /** Log a restart and wait its delay; false when a stop came meanwhile. */
  async #act(a: ChildAction, verb: string): Promise<boolean> {
    if (a.kind !== "restart") return true;
    this.#events.problem(a.problem);
    this.#deps.log.error(
      `${a.problem}; ${verb} in ${a.delayMs} ms${a.crashLoop ? " (crash loop)" : ""}`,
    );
    return await this.#deps.sleep(a.delayMs, this.#stop);
  }

  #watch(child: ChildHandle): void {
    child.exited.then(async (status) => {
      if (this.#stop.aborted || this.#child !== child) return;
      this.#events.down(child, status);
      this.#events.exited(status);
      const a = this.#decide({
        kind: "exited",
        status,
        ranMs: this.#deps.now() - child.startedAt,
        tail: child.tail(),
      });
      if (a.kind === "fail") {
        this.#events.failed(a.problem);
        return;
      }
      if (!(await this.#act(a, "restarting"))) return;
      try {
        if (await this.start()) {
          this.#events.problem(undefined);
          this.#deps.log.info(`${this.label} is back`);
        }
      } catch (error) {
        this.#events.failed(error instanceof Error ? error.message : String(error));
      }
    });
  }
}
