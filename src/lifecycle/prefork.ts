/**
 * EFFECT: `pre-fork` (the platform calls it before it snapshots the volume): the pre-fork.d
 * hooks, CHECKPOINT, and the redo distance left — the WAL bytes a fork of a snapshot taken now
 * replays (from the last checkpoint's redo point to the insert position).
 */
import { runHooks } from "../boot/hooks.ts";
import type { Context } from "../boot/context.ts";
import { CommandError } from "../rpc/dispatch.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";

export async function preFork(ctx: Context, sup: Supervisor, admin: Admin) {
  if (!sup.postgresUp) {
    throw new CommandError(
      "unavailable",
      `pre-fork needs a running postgres; state is ${sup.status().state}`,
    );
  }
  const t0 = performance.now();
  const hooks = await runHooks("pre-fork", {
    hooksDir: ctx.layout.hooksDir,
    timeoutMs: ctx.settings.hookTimeoutMs,
    env: ctx.hookEnv,
  });
  const failed = hooks.find((h) => h.code !== 0);
  if (failed) {
    throw new CommandError(
      "failed",
      `pre-fork hook ${failed.name} ${
        failed.timedOut ? "timed out" : `exited ${failed.code}`
      }; fix or remove ${ctx.layout.hooksDir}/pre-fork.d/${failed.name}`,
    );
  }
  const hooksMs = Math.round(performance.now() - t0);
  await admin.checkpoint(10 * 60_000);
  const checkpointMs = Math.round(performance.now() - t0) - hooksMs;
  const [row] = await admin.query(
    `SELECT (pg_current_wal_insert_lsn() - redo_lsn)::bigint AS distance, redo_lsn::text AS redo,
       pg_current_wal_insert_lsn()::text AS insert FROM pg_control_checkpoint()`,
  );
  return {
    redoDistanceBytes: Number(row?.["distance"] ?? 0),
    redo: row?.["redo"],
    insert: row?.["insert"],
    hooks: hooks.map((h) => h.name),
    ms: { hooks: hooksMs, checkpoint: checkpointMs },
  };
}
