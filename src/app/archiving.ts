/**
 * EFFECT: archiving in a running supervisor. After boot (PGDATA exists, so the system
 * identifier is known) and before postgres starts: write the private config (root only) and
 * the public state for the commands postgres runs (config.ts), claim the target prefix, and
 * serve the archive socket. Without a target both files are removed, so `archive` is a no-op
 * again.
 */
import type { Context } from "../boot/context.ts";
import { makeDispatch } from "../rpc/dispatch.ts";
import { ControlServer } from "../rpc/server.ts";
import { counter, type Family, gauge } from "../metrics/prom.ts";
import { OperatorError } from "../util/errors.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { ArchiveError } from "../wal/errors.ts";
import {
  type ArchiveConfig,
  archiveDir,
  archiveDoneDir,
  type ArchiveState,
  privateConfigPath,
  privateDir,
  statePath,
} from "../wal/config.ts";
import { ArchiveService } from "../wal/service.ts";
import { archiveConfigFor, clusterTimeline } from "../boot/archive_config.ts";
import { readPostmasterPid } from "../supervise/postmaster_pid.ts";
import { type ArchiveMarker, nextMarker, readMarker, writeMarker } from "../wal/marker.ts";
import { readProcStat } from "../util/proc.ts";
import type { S3Stats } from "../s3/client.ts";
import { lastVerified } from "../backup/verified.ts";
import { abortAbandonedUploads } from "../backup/orphans.ts";
import { clientFor, layoutFor } from "../wal/archive.ts";

export interface Archiving {
  /** Undefined while the target is missing (nothing is archived). */
  service: ArchiveService | undefined;
  close(): void;
  metrics(): Family[];
  status(): Record<string, unknown>;
}

/** Remove what archiving leaves in the run dir (no target: `archive` is a no-op again). */
function forgetArchive(ctx: Context): void {
  const run = ctx.trees.run;
  run.remove(statePath(ctx.layout.runDir), false);
  run.remove(privateConfigPath(ctx.layout.runDir), false);
  run.remove(archiveDoneDir(ctx.layout.runDir));
}

export interface StartArchivingOptions {
  /** This cluster takes its prefix's lineage over (restore --promote-as-primary). */
  promote?: boolean;
}

export async function startArchiving(
  ctx: Context,
  o: StartArchivingOptions = {},
): Promise<Archiving | undefined> {
  const owner = ctx.runAs.switchTo;
  const run = ctx.trees.run;
  const runDir = ctx.layout.runDir;
  const cfg = archiveConfigFor(ctx);
  const stateDir = ctx.layout.stateDir;
  const before = readMarker(ctx.trees.data, stateDir);
  const next = nextMarker(before, {
    target: cfg?.target,
    off: ctx.settings.archiveOff,
    now: new Date(),
  });
  if (next.marker && JSON.stringify(next.marker) !== JSON.stringify(before)) {
    writeMarker(ctx.trees.data, stateDir, next.marker);
  }
  if (!cfg) {
    forgetArchive(ctx);
    if (ctx.settings.archiveOff && before && !before.off) {
      log.warn(
        `archiving to ${before.target} switched off (BEYOND_PG_ARCHIVE_TARGET=off): WAL from now on is not archived; a target set later needs a fresh base backup before restores can reach past this point`,
      );
    }
    return next.mode === "missing" ? targetMissing(ctx, next.marker!) : undefined;
  }
  if (next.gap) {
    log.warn(
      `archive: this volume's WAL was not archived to ${cfg.target} for a while (since ${
        next.marker!.gapSince
      }); take a base backup (beyond-pg backup) so that restores can reach past the gap`,
    );
  }
  run.ensureDir(privateDir(runDir), 0o700);
  run.writeAtomic(privateConfigPath(runDir), JSON.stringify(cfg, null, 2) + "\n", 0o600);
  run.ensureDir(archiveDir(runDir), 0o755);
  const state: ArchiveState = { mode: "on", socket: cfg.socket, target: cfg.target };
  run.writeAtomic(statePath(runDir), JSON.stringify(state) + "\n", 0o644);
  const service = new ArchiveService({
    cfg,
    walDir: cfg.walDir,
    data: ctx.trees.data,
    spoolDir: `${ctx.layout.dataRoot}/restore-spool`,
    done: run.sub(archiveDoneDir(runDir)),
    ...(owner ? { owner } : {}),
    localTimeline: clusterTimeline(ctx),
    promote: o.promote ?? ctx.settings.archivePromote,
    onRecovered: () => wakeArchiver(ctx),
  });
  try {
    await service.checkOwner();
  } catch (error) {
    if (
      error instanceof ArchiveError && !error.transient && /another cluster/.test(error.message)
    ) {
      forgetArchive(ctx);
      throw new OperatorError(`Cannot start: ${error.message}`, { exitCode: 2 });
    }
    // The store is down or refuses us: keep running; postgres keeps its WAL until it works.
    log.error(`archive: ${errorMessage(error)}; WAL stays in pg_wal until it can be stored`);
  }
  const server = new ControlServer(makeDispatch({
    archive: {
      summary: "store one WAL file (by name) in the archive",
      timeoutMs: 30 * 60_000,
      run: (a) => service.archive(String(a["name"] ?? "")),
    },
    restore: {
      summary: "fetch one WAL file (by name) into the restore spool",
      timeoutMs: 30 * 60_000,
      run: (a) => service.restore(String(a["name"] ?? "")),
    },
  }));
  server.listenUnix(run, cfg.socket, { dirMode: 0o755, ...(owner ? { owner } : {}) });
  service.start();
  const sweeper = sweepAbandonedUploads(cfg);
  log.info(
    `archiving to ${cfg.target} (${cfg.endpoint}, ${cfg.codec}, ${cfg.parallel} in parallel)`,
  );
  const st = service.stats;
  return {
    service,
    close() {
      sweeper.stop();
      server.close();
      service.close();
    },
    status: () => ({
      target: cfg.target,
      backlog: st.backlog,
      archived: st.archivedTotal,
      lastArchived: st.lastArchived,
      lastArchivedAt: st.lastArchivedAt ? new Date(st.lastArchivedAt).toISOString() : null,
      ...(st.firstUncovered ? { firstNotArchived: st.firstUncovered } : {}),
      lineage: { ...service.lineage.state },
      ...(next.marker?.gapSince ? { gapSince: next.marker.gapSince } : {}),
      ...(st.lastError ? { lastError: st.lastError } : {}),
    }),
    metrics: () => [
      gauge(
        "beyond_pg_archive_backlog",
        "WAL files postgres marked ready that are not stored yet.",
        st.backlog,
      ),
      counter("beyond_pg_archive_files_total", "WAL files archived by the supervisor.", [
        { labels: { result: "stored" }, value: st.archivedTotal },
        { labels: { result: "already_stored" }, value: st.alreadyStoredTotal },
        { labels: { result: "failed" }, value: st.failedTotal },
      ]),
      counter(
        "beyond_pg_archive_bytes_total",
        "WAL bytes archived, before and after compression.",
        [
          { labels: { stage: "wal" }, value: st.bytesTotal },
          { labels: { stage: "stored" }, value: st.storedBytesTotal },
        ],
      ),
      gauge(
        "beyond_pg_archive_last_success_timestamp_seconds",
        "When the last WAL file was stored (0: never).",
        st.lastArchivedAt / 1000,
      ),
      ...s3Metrics(service.client.stats),
      gauge(
        "beyond_pg_archive_verified_timestamp_seconds",
        "When `verify` last proved the backups restorable (0: never).",
        lastVerified(runDir, cfg.target),
      ),
      counter("beyond_pg_restore_files_total", "WAL files served to restore_command.", [
        { labels: { source: "prefetched" }, value: st.prefetchHitsTotal },
        { labels: { source: "fetched" }, value: st.restoredTotal - st.prefetchHitsTotal },
      ]),
    ],
  };
}

/**
 * Once a day (the first an hour after start), abort multipart uploads left behind under the
 * target's prefix for more than a day (backup/orphans.ts): parts nobody completes are billed
 * until aborted. Failures are logged and retried the next day.
 */
function sweepAbandonedUploads(cfg: ArchiveConfig): { stop(): void } {
  const run = async () => {
    const client = clientFor(cfg);
    try {
      const r = await abortAbandonedUploads(client, layoutFor(cfg).target.prefix);
      if (r.aborted) {
        log.info(`archive: aborted ${r.aborted} multipart upload(s) left behind for over a day`);
      }
    } catch (error) {
      log.warn(`archive: could not look for abandoned uploads: ${errorMessage(error)}`);
    } finally {
      client.close();
    }
  };
  let daily: ReturnType<typeof setInterval> | undefined;
  const first = setTimeout(() => {
    run();
    daily = setInterval(run, 86_400_000);
    Deno.unrefTimer(Number(daily));
  }, 3_600_000);
  Deno.unrefTimer(Number(first));
  return {
    stop() {
      clearTimeout(first);
      clearInterval(daily);
    },
  };
}

/** The archive service's S3 requests and retries (by reason). */
function s3Metrics(stats: S3Stats | undefined): Family[] {
  if (!stats) return [];
  return [
    counter(
      "beyond_pg_s3_requests_total",
      "S3 requests sent by the archive service.",
      stats.requests,
    ),
    counter(
      "beyond_pg_s3_retries_total",
      "S3 requests sent again after a retryable failure, by reason.",
      Object.entries(stats.retries).map(([reason, value]) => ({ labels: { reason }, value })),
    ),
    counter(
      "beyond_pg_s3_failures_total",
      "S3 operations that failed after their last attempt.",
      stats.failures,
    ),
  ];
}

/**
 * SIGUSR1 to postgres's archiver process (a child of our postmaster) sets its latch: it
 * retries now instead of after its one-minute pause following three failures. Only a process
 * of postgres's uid whose parent is the postmaster is signalled.
 */
export function wakeArchiver(ctx: Context): void {
  const postmaster = readPostmasterPid(ctx.trees.data, ctx.layout.pgdata)?.pid;
  if (!postmaster) return;
  const uid = ctx.runAs.switchTo?.uid ?? Deno.uid();
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    const stat = readProcStat(pid);
    if (!stat || stat.ppid !== postmaster || stat.uid !== uid) continue;
    try {
      if (!Deno.readTextFileSync(`/proc/${pid}/cmdline`).startsWith("postgres: archiver")) continue;
      Deno.kill(pid, "SIGUSR1");
    } catch { /* gone */ }
  }
}

/**
 * A volume that was archived, booted without a target: `archive` fails (postgres keeps its WAL,
 * nothing is recycled unarchived), status and metrics say so, and a warning every minute
 * names the oldest file waiting, until the target is back or BEYOND_PG_ARCHIVE_TARGET=off.
 */
function targetMissing(ctx: Context, marker: ArchiveMarker): Archiving {
  const run = ctx.trees.run;
  const runDir = ctx.layout.runDir;
  run.ensureDir(archiveDir(runDir), 0o755);
  const state: ArchiveState = { mode: "missing", target: marker.target };
  run.writeAtomic(statePath(runDir), JSON.stringify(state) + "\n", 0o644);
  const waiting = () => {
    const names = ctx.trees.data.list(`${ctx.layout.pgdata}/pg_wal/archive_status`)
      .map((e) => e.name)
      .filter((n) => n.endsWith(".ready"))
      .map((n) => n.slice(0, -6))
      .sort();
    return { count: names.length, first: names[0] ?? "" };
  };
  const problem =
    `target missing: this volume was archived to ${marker.target}, and no BEYOND_PG_ARCHIVE_TARGET is set; WAL stays in pg_wal until it is (or set BEYOND_PG_ARCHIVE_TARGET=off to stop archiving on purpose)`;
  const warn = () => {
    const w = waiting();
    log.warn(
      `archive: ${problem}; ${w.count} file(s) waiting${w.first ? `, oldest ${w.first}` : ""}`,
    );
  };
  warn();
  const timer = setInterval(warn, 60_000);
  return {
    service: undefined,
    close: () => clearInterval(timer),
    status: () => {
      const w = waiting();
      return {
        target: null,
        problem,
        backlog: w.count,
        ...(w.first ? { firstNotArchived: w.first } : {}),
      };
    },
    metrics: () => [
      gauge(
        "beyond_pg_archive_target_missing",
        "1: this volume was archived and no target is set now (WAL is kept, not recycled).",
        1,
      ),
      gauge(
        "beyond_pg_archive_backlog",
        "WAL files postgres marked ready that are not stored yet.",
        waiting().count,
      ),
    ],
  };
}

/** A base backup completed: restores no longer need to cross an archiving gap. */
export function archiveBackupTaken(ctx: Context): void {
  const m = readMarker(ctx.trees.data, ctx.layout.stateDir);
  if (m?.gapSince) {
    const { gapSince: _, ...rest } = m;
    writeMarker(ctx.trees.data, ctx.layout.stateDir, rest);
  }
}
