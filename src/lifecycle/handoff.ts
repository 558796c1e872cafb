/**
 * EFFECT: a generation handoff (resize, image upgrade). `handoff-prepare`: CHECKPOINT while
 * clients still run → PgBouncer PAUSE (running transactions finish, new ones queue: none
 * fails) → postgres's clean stop (its shutdown checkpoint has little left to write), kept stopped (not a crash to restart) → the data root's lock is let go → the answer
 * names the final LSN (the shutdown checkpoint: the next generation replays nothing).
 * PgBouncer stays up and paused, holding its clients, until this supervisor is stopped
 * (SIGTERM, once the next generation serves) or `handoff-abort` starts postgres again, takes
 * the lock back and resumes PgBouncer.
 */
import type { VolumeLock } from "../boot/lock.ts";
import type { Context } from "../boot/context.ts";
import { CommandError } from "../rpc/dispatch.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { formatLsn } from "../wal/names.ts";
import { readControlCheckpoint } from "./control_file.ts";

export type HandoffState = "none" | "preparing" | "handed-off" | "aborting";

export class Handoff {
  readonly #ctx: Context;
  readonly #sup: Supervisor;
  readonly #admin: Admin;
  readonly #lock: VolumeLock;
  #state: HandoffState = "none";
  #result: Record<string, unknown> | undefined;

  constructor(ctx: Context, sup: Supervisor, admin: Admin, lock: VolumeLock) {
    this.#ctx = ctx;
    this.#sup = sup;
    this.#admin = admin;
    this.#lock = lock;
  }

  /** Anything but "none": the idle watcher stays its hand. */
  get active(): boolean {
    return this.#state !== "none";
  }

  async prepare(args: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.#state !== "none") {
      throw new CommandError("unavailable", `a handoff is already ${this.#state}`);
    }
    if (!this.#sup.postgresUp || !this.#sup.pgbouncerUp || this.#sup.stopping) {
      throw new CommandError(
        "unavailable",
        `handoff-prepare needs postgres and PgBouncer running; state is ${this.#sup.status().state}`,
      );
    }
    const [rec] = await this.#admin.query("SELECT pg_is_in_recovery() AS r");
    if (rec?.["r"] === "t") {
      throw new CommandError("unavailable", "handoff-prepare: this server is in recovery");
    }
    const pauseTimeoutMs = typeof args["timeoutMs"] === "number" ? args["timeoutMs"] : 30_000;
    this.#state = "preparing";
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    const phases: Record<string, number> = {};
    try {
      // While clients still run: the shutdown checkpoint after PAUSE then has little to write.
      await this.#admin.checkpoint(10 * 60_000);
    } catch (error) {
      this.#state = "none";
      throw new CommandError(
        "failed",
        `handoff-prepare: CHECKPOINT failed: ${errorMessage(error)}`,
      );
    }
    phases["checkpoint_ms"] = ms();
    try {
      await this.#admin.bouncer("PAUSE", pauseTimeoutMs);
    } catch (error) {
      await this.#admin.bouncer("RESUME").catch(() => {});
      this.#state = "none";
      throw new CommandError(
        "timeout",
        `handoff-prepare: PgBouncer could not pause within ${pauseTimeoutMs} ms (a long transaction?): ${
          errorMessage(error)
        }; clients resumed`,
      );
    }
    phases["pause_ms"] = ms() - phases["checkpoint_ms"];
    try {
      const clean = await this.#sup.parkPostgres(
        "handed off: postgres stopped for the next generation (handoff-abort starts it again)",
      );
      phases["stop_ms"] = ms() - phases["pause_ms"] - phases["checkpoint_ms"];
      phases["paused_ms"] = phases["pause_ms"] + phases["stop_ms"];
      const control = readControlCheckpoint(
        this.#ctx.trees.data.readBytes(`${this.#ctx.layout.pgdata}/global/pg_control`) ??
          new Uint8Array(),
      );
      if (!clean || control.state !== "shut down") {
        throw new Error(
          `postgres did not shut down cleanly (pg_control: ${control.state})`,
        );
      }
      this.#lock.release();
      this.#state = "handed-off";
      this.#result = {
        lsn: formatLsn(control.checkpoint),
        redo: formatLsn(control.redo),
        timeline: control.timeline,
        at: new Date().toISOString(),
      };
      log.info(
        `handoff: postgres stopped at ${
          this.#result["lsn"]
        } in ${ms()} ms (PgBouncer paused); the volume is free for the next generation`,
      );
      return { ...this.#result, replayBytes: Number(control.checkpoint - control.redo), phases };
    } catch (error) {
      log.error(`handoff-prepare failed: ${errorMessage(error)}; resuming`);
      await this.#resume();
      throw new CommandError("failed", `handoff-prepare: ${errorMessage(error)}; resumed`);
    }
  }

  async abort(): Promise<Record<string, unknown>> {
    if (this.#state !== "handed-off") {
      throw new CommandError("unavailable", `no handoff to abort (handoff is ${this.#state})`);
    }
    const t0 = performance.now();
    try {
      await this.#lock.reacquire();
    } catch (error) {
      throw new CommandError(
        "failed",
        `handoff-abort: the next generation holds the volume (${
          errorMessage(error)
        }); stop it first`,
      );
    }
    this.#state = "aborting";
    await this.#resume();
    log.info(`handoff aborted: postgres is back, PgBouncer resumed`);
    return { resumed: true, ms: Math.round(performance.now() - t0) };
  }

  async #resume(): Promise<void> {
    try {
      await this.#lock.reacquire();
      if (!this.#sup.postgresUp) await this.#sup.unparkPostgres();
    } finally {
      await this.#admin.bouncer("RESUME").catch((e) =>
        log.warn(`handoff: PgBouncer RESUME failed: ${errorMessage(e)}`)
      );
      this.#state = "none";
      this.#result = undefined;
    }
  }

  status(): Record<string, unknown> | undefined {
    return this.#state === "none" ? undefined : { state: this.#state, ...this.#result };
  }
}
