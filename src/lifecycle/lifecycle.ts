/**
 * EFFECT: the serverless lifecycle in one place, for the root to wire in: the fork's boot
 * (fork.ts), idle scale-to-zero (idle.ts), the generation handoff (handoff.ts) and pre-fork
 * (prefork.ts) — their control commands, runnables, status and metrics.
 */
import type { Context } from "../boot/context.ts";
import type { VolumeLock } from "../boot/lock.ts";
import type { Family } from "../metrics/prom.ts";
import type { CommandSpec } from "../rpc/dispatch.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { Fork } from "./fork.ts";
import { Handoff } from "./handoff.ts";
import { IdleWatcher } from "./idle.ts";
import { preFork } from "./prefork.ts";

/** What the root has once the supervisor exists. */
export interface LifecycleParts {
  sup: Supervisor;
  admin: Admin;
  lock: VolumeLock;
  /** WAL files waiting to be archived now. */
  archiveBacklog: () => number;
}

/** A runnable as the root registers it (app/runnable.ts). */
interface Part {
  name: string;
  start(stop: AbortSignal): void | Promise<void>;
  close(): void | Promise<void>;
}

export class Lifecycle {
  readonly fork: Fork;
  #ctx: Context;
  #parts: LifecycleParts | undefined;
  #idle: IdleWatcher | undefined;
  #handoff: Handoff | undefined;

  private constructor(ctx: Context, fork: Fork) {
    this.#ctx = ctx;
    this.fork = fork;
  }

  /** Before boot (throws one line when the volume metadata contradicts itself). */
  static detect(ctx: Context): Lifecycle {
    const fork = Fork.detect(ctx);
    return new Lifecycle(fork.context(ctx), fork);
  }

  /** The context the rest runs with (a fork's archiving and certificate rules applied). */
  get context(): Context {
    return this.#ctx;
  }

  attach(parts: LifecycleParts): void {
    this.#parts = parts;
    this.#handoff = new Handoff(this.#ctx, parts.sup, parts.admin, parts.lock);
    this.#idle = new IdleWatcher({
      sup: parts.sup,
      admin: parts.admin,
      afterS: this.#ctx.settings.lifecycle.idleShutdownS,
      archiveBacklog: parts.archiveBacklog,
      handoff: () => this.#handoff?.active ?? false,
    });
  }

  #need(): LifecycleParts {
    if (!this.#parts) throw new Error("lifecycle used before attach()");
    return this.#parts;
  }

  /** Phase "booted", before archiving: the fork's marker and record. */
  booted(): Part {
    return { name: "fork", start: () => this.fork.afterBoot(this.#ctx), close: () => {} };
  }

  /**
   * postgres is up, before post-start (the supervisor's hook): a fork's inherited slots are
   * dropped before post-start makes the slots of this node's WAL sinks (replication), so those
   * start fresh and are not dropped with the parent's.
   */
  async beforePostStart(): Promise<void> {
    await this.fork.dropInheritedSlots(this.#ctx, this.#need().admin);
  }

  /** A fork's first boot runs post-start before 5432 serves (its inherited slots go first). */
  postStartFirst(): boolean {
    return this.fork.decision.fresh || this.fork.decision.record.dropSlots === true;
  }

  /** Phase "ready": the idle watcher. */
  ready(): Part {
    let done: Promise<void> | undefined;
    return {
      name: "lifecycle",
      start: (stop) => {
        done = this.#idle?.run(stop);
      },
      close: async () => void await done?.catch(() => {}),
    };
  }

  /** The control commands with the lifecycle's added (pre-fork, handoff-prepare/-abort). */
  withCommands(commands: Record<string, CommandSpec>): Record<string, CommandSpec> {
    return { ...commands, ...this.commands() };
  }

  commands(): Record<string, CommandSpec> {
    return {
      "pre-fork": {
        summary:
          "pre-fork.d hooks, CHECKPOINT; the redo distance a fork of a snapshot taken now replays",
        timeoutMs: 15 * 60_000,
        run: () => {
          const p = this.#need();
          return preFork(this.#ctx, p.sup, p.admin);
        },
      },
      "handoff-prepare": {
        summary: "PgBouncer PAUSE, CHECKPOINT, clean postgres stop, volume released; the final LSN",
        timeoutMs: 15 * 60_000,
        run: (a) => this.#handoff!.prepare(a),
      },
      "handoff-abort": {
        summary: "after handoff-prepare: take the volume back, start postgres, PgBouncer RESUME",
        timeoutMs: 5 * 60_000,
        run: () => this.#handoff!.abort(),
      },
    };
  }

  status(): Record<string, unknown> {
    const fork = this.fork.status();
    const handoff = this.#handoff?.status();
    return {
      ...(fork ? { fork_of: fork["fork_of"], fork } : {}),
      idle: this.#idle?.status() ?? {},
      ...(handoff ? { handoff } : {}),
    };
  }

  metrics(): Family[] {
    return this.#idle?.metrics() ?? [];
  }
}
