/**
 * EFFECT: a fork's boot (policy in fork_policy.ts). Before boot: read the volume record and the
 * archive marker, decide, and give the rest of the boot a context in which archiving to a
 * parent's prefix is off and a self-signed certificate with other names is renewed. Once PGDATA
 * exists (before postgres starts): mark the inherited archive marker off and write the record.
 * Once postgres is up: drop the inherited replication slots.
 */
import type { Context } from "../boot/context.ts";
import type { PgTree } from "../fs/tree.ts";
import { quoteLiteral } from "../pg/client.ts";
import type { Admin } from "../supervise/admin.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { readMarker, writeMarker } from "../wal/marker.ts";
import {
  archiveRefusal,
  decideFork,
  type ForkDecision,
  parseRecord,
  type VolumeRecord,
} from "./fork_policy.ts";

export function recordPath(stateDir: string): string {
  return `${stateDir}/volume.json`;
}

export function readRecord(data: PgTree, stateDir: string): VolumeRecord | undefined {
  try {
    const text = data.readText(recordPath(stateDir));
    return text === undefined ? undefined : parseRecord(text);
  } catch {
    return undefined; // postgres's file: unreadable is as if none (the safe side: not a fork)
  }
}

export class Fork {
  readonly decision: ForkDecision;
  /** Why archiving is off on this fork (a parent's prefix), if it is. */
  readonly archiveProblem: string | undefined;
  #dropped: string[] | undefined;
  #dropProblem: string | undefined;

  private constructor(decision: ForkDecision, archiveProblem: string | undefined) {
    this.decision = decision;
    this.archiveProblem = archiveProblem;
  }

  /** Before boot: what this volume is. Throws (one line) when the metadata contradicts itself. */
  static detect(ctx: Context, now = new Date()): Fork {
    const { trees, layout, settings } = ctx;
    const dataExisted = trees.data.exists(`${layout.pgdata}/PG_VERSION`);
    const decision = decideFork({
      recorded: dataExisted ? readRecord(trees.data, layout.stateDir) : undefined,
      dataExisted,
      volumeId: settings.lifecycle.volumeId,
      forkOf: settings.lifecycle.forkOf,
      parentTarget: dataExisted ? readMarker(trees.data, layout.stateDir)?.target : undefined,
      now,
    });
    if (decision.problem) {
      throw new OperatorError(`Cannot start: ${decision.problem}`, { exitCode: 2 });
    }
    for (const w of decision.warnings) log.warn(w);
    const problem = archiveRefusal(decision.record, settings.archiveTarget?.url);
    if (decision.fresh) {
      log.info(
        `fork: this volume is a fork of ${decision.record.forkOf}; archiving stays off until a target other than the parent's is set, inherited replication slots are dropped`,
      );
    }
    if (problem) log.warn(problem);
    return new Fork(decision, problem);
  }

  get forkOf(): string | undefined {
    return this.decision.record.forkOf;
  }

  /** The context the boot runs with: no archive target when it is a parent's. */
  context(ctx: Context): Context {
    if (!this.decision.fresh && !this.archiveProblem) return ctx;
    return {
      ...ctx,
      ...(this.decision.fresh ? { newFork: true } : {}),
      settings: this.archiveProblem
        ? { ...ctx.settings, archiveTarget: undefined, s3: undefined, archiveOff: true }
        : ctx.settings,
    };
  }

  /**
   * PGDATA exists, postgres not started: the parent's archive marker is marked off (so a fork
   * without a target recycles its WAL instead of keeping it for the parent's target, and a new
   * target starts with a gap a base backup closes), then the record is written.
   */
  afterBoot(ctx: Context, now = new Date()): void {
    const { trees, layout } = ctx;
    if (this.decision.fresh) {
      const marker = readMarker(trees.data, layout.stateDir);
      if (marker && !marker.off) {
        writeMarker(trees.data, layout.stateDir, { ...marker, off: now.toISOString() });
      }
    }
    this.#write(ctx);
  }

  #write(ctx: Context): void {
    const { trees, layout } = ctx;
    const text = JSON.stringify(this.decision.record) + "\n";
    trees.data.ensureDir(layout.stateDir, 0o700);
    trees.data.writeIfChanged(recordPath(layout.stateDir), text, 0o600);
  }

  /** postgres is up: drop the slots the fork inherited (once; the record remembers). */
  async dropInheritedSlots(ctx: Context, admin: Admin): Promise<void> {
    if (!this.decision.record.dropSlots) return;
    try {
      const slots = await admin.query(
        "SELECT slot_name, slot_type, database FROM pg_replication_slots ORDER BY slot_name",
      );
      const dropped: string[] = [];
      for (const s of slots) {
        const name = String(s["slot_name"]);
        const sql = `SELECT pg_drop_replication_slot(${quoteLiteral(name)})`;
        // A logical slot is dropped from its own database.
        if (s["slot_type"] === "logical" && s["database"] && s["database"] !== "postgres") {
          await admin.queryIn(String(s["database"]), sql);
        } else await admin.query(sql);
        dropped.push(name);
      }
      this.#dropped = dropped;
      this.decision.record.dropSlots = false;
      this.#write(ctx);
      if (dropped.length) {
        log.info(`fork: dropped inherited replication slots: ${dropped.join(", ")}`);
      }
    } catch (error) {
      this.#dropProblem = `inherited replication slots not dropped yet: ${errorMessage(error)}`;
      log.warn(`fork: ${this.#dropProblem}; retried at the next boot`);
    }
  }

  /** `fork_of` and what the fork did, for status (undefined: not a fork). */
  status(): Record<string, unknown> | undefined {
    const r = this.decision.record;
    if (!r.forkOf) return undefined;
    return {
      fork_of: r.forkOf,
      forkedAt: r.forkedAt,
      ...(r.volumeId ? { volumeId: r.volumeId } : {}),
      firstBoot: this.decision.fresh,
      ...(this.archiveProblem ? { archive: this.archiveProblem } : {}),
      ...(this.#dropped ? { slotsDropped: this.#dropped } : {}),
      ...(this.#dropProblem ? { problem: this.#dropProblem } : {}),
    };
  }
}
