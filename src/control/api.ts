/** The control commands served by a running supervisor (see rpc/dispatch.ts for the mechanism). */
import { CommandError, type CommandSpec } from "../rpc/dispatch.ts";
import type { Operations } from "./operations.ts";
import type { Supervisor } from "../supervise/supervisor.ts";

export interface ExtraCommands {
  backup?: CommandSpec;
  verify?: CommandSpec;
}

export function controlCommands(
  sup: Supervisor,
  ops: Operations,
  extra: ExtraCommands = {},
): Record<string, CommandSpec> {
  return {
    health: {
      summary: "postgres accepting + SELECT 1 via 5433, PgBouncer up",
      timeoutMs: 5000,
      run: () => ops.health(),
    },
    status: {
      summary: "state, reason, versions, ports, uptime, restarts, startup phases",
      timeoutMs: 1000,
      run: () => sup.status(),
    },
    checkpoint: {
      summary: "CHECKPOINT (before a snapshot, for a fast fork boot)",
      timeoutMs: 15 * 60_000,
      run: () => ops.checkpoint(),
    },
    reload: {
      summary: "re-render config, reload postgres and PgBouncer, report pending restarts",
      timeoutMs: 30_000,
      run: () => ops.reload(),
    },
    drain: {
      summary: "PgBouncer PAUSE: new queries wait, nothing is dropped",
      timeoutMs: 10 * 60_000,
      run: (a) => ops.drain(a),
    },
    resume: { summary: "PgBouncer RESUME", timeoutMs: 10_000, run: () => ops.resume() },
    "hot-set": {
      summary: "files a fork should prefetch (pg_control, catalogs, recent WAL)",
      timeoutMs: 30_000,
      run: () => ops.hotSet(),
    },
    verify: extra.verify ?? {
      summary: "verify the archive's backups and WAL",
      timeoutMs: 1000,
      run: () => {
        throw new CommandError(
          "unavailable",
          "verify is not available: no archive target is configured (BEYOND_PG_ARCHIVE_TARGET)",
        );
      },
    },
    backup: extra.backup ?? {
      summary: "base backup to the archive target",
      timeoutMs: 1000,
      run: () => {
        throw new CommandError(
          "unavailable",
          "backup is not available: no archive target is configured (BEYOND_PG_ARCHIVE_TARGET)",
        );
      },
    },
  };
}
