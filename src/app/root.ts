/**
 * The composition root: everything a running database is made of, wired in one place and
 * used alike by the plain process (`beyond-pg supervisor`), a container's PID 1, our VM's PID 1
 * and `restore`. The supervisor keeps postgres and PgBouncer running; every other long-running
 * concern is a runnable (runnable.ts) registered here with the moment it starts:
 *
 *   now      control (Unix socket; vsock in our VM), HTTP (/healthz, /readyz, /metrics)
 *   booted   archiving (PGDATA exists, postgres not started yet)
 *   ready    the TLS watcher, the recovery-point keeper
 *
 * One stop latch (latch.ts) ends it all; runnables are closed in reverse, logs flushed last.
 */
import { runBackupChild, runVerifyChild } from "../backup/child.ts";
import type { BootResult } from "../boot/boot.ts";
import { applyConfig } from "../boot/boot.ts";
import type { Context } from "../boot/context.ts";
import { lockDataRoot, VolumeLock } from "../boot/lock.ts";
import { controlSocketTree, makeTrees } from "../boot/trees.ts";
import { maxClientConn, PGBOUNCER_FD_HEADROOM } from "../config/pgbouncer.ts";
import { controlCommands, replicationCommands } from "../control/api.ts";
import { ReplicationOps } from "../control/replication.ts";
import { replicationFamilies, ReplicationMonitor } from "../control/replication_status.ts";
import { live, ready } from "../control/health.ts";
import { collectMetrics } from "../control/metrics.ts";
import { Operations } from "../control/operations.ts";
import { serveHttp } from "../http/server.ts";
import { Lifecycle } from "../lifecycle/lifecycle.ts";
import { renderFamilies } from "../metrics/prom.ts";
import { raiseFdLimit } from "../process/fd_limit.ts";
import { CommandError, makeDispatch } from "../rpc/dispatch.ts";
import { ControlServer } from "../rpc/server.ts";
import { Admin } from "../supervise/admin.ts";
import { Supervisor } from "../supervise/supervisor.ts";
import { TlsWatcher } from "../supervise/tls_watch.ts";
import { realClock } from "../util/clock.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { parseLsn } from "../wal/names.ts";
import { RpoKeeper, segmentAt } from "../wal/rpo.ts";
import { archiveBackupTaken, type Archiving, startArchiving } from "./archiving.ts";
import type { StopLatch } from "./latch.ts";
import { inheritOutput, setUpLogging } from "./logging.ts";
import { type Runnable, Runnables } from "./runnable.ts";
import { sleep } from "../util/sleep.ts";

export interface RootOptions {
  latch: StopLatch;
  /** PID 1 in our own VM (vsock defaults on). */
  inOwnVm: boolean;
  /** Called once, when 5432 first serves a ready database (dev prints DSNs here). */
  onReady?: () => void;
  /** Called once, after boot (initdb, restore, config), right before postgres first starts. */
  beforePostgres?: () => void;
  /** See SupervisorHooks.failFast (restore). */
  failFast?: () => boolean;
  /** This cluster takes its archive prefix's lineage over (restore --promote-as-primary). */
  archivePromote?: boolean;
}

/** Boot, run and supervise the database until the latch says stop; the exit code. */
export async function runDatabase(ctx: Context, o: RootOptions): Promise<number> {
  makeTrees(ctx.trees);
  const lockVolume = () =>
    lockDataRoot(ctx.trees.data, ctx.layout.lockFile, ctx.settings.lifecycle.lockWaitMs);
  const lock = new VolumeLock(await lockVolume(), lockVolume);
  const forwarder = await setUpLogging(ctx, o.inOwnVm);
  const runnables = new Runnables(o.latch.signal);
  const admin = new Admin({
    socketDir: ctx.layout.socketDir,
    directPort: ctx.settings.directPort,
    pgbouncerPort: ctx.settings.port,
    password: ctx.settings.password,
  });
  let archiving: Archiving | undefined;
  let tls: TlsWatcher | undefined;
  let booted: BootResult | undefined;
  try {
    // A fork's first boot, archiving to a parent's prefix (lifecycle/fork.ts): before boot.
    const life = Lifecycle.detect(ctx);
    ctx = life.context;
    // Before any child starts: postgres and PgBouncer inherit it.
    const fdLimit = raiseFdLimit(maxClientConn(ctx.ramMb) + PGBOUNCER_FD_HEADROOM);
    if (fdLimit.warning) log.warn(fdLimit.warning);
    const sup = new Supervisor(ctx, ctx.settings.logCapture ? forwarder : inheritOutput, {
      ...(o.failFast ? { failFast: o.failFast } : {}),
      afterBoot: async (b) => {
        booted = b;
        await runnables.enter("booted");
        o.beforePostgres?.();
      },
      beforePostStart: () => life.beforePostStart(),
      postStartFirst: () => life.postStartFirst(),
      statusExtra: (): Record<string, unknown> => ({
        tls: tls?.status() ??
          (booted?.tls
            ? {
              source: booted.tls.source,
              fingerprint: booted.tls.fingerprint,
              notAfter: booted.tls.notAfter,
            }
            : { source: "off", ...(booted?.tlsProblem ? { problem: booted.tlsProblem } : {}) }),
        archive: archiving?.status() ?? { target: null },
        replication: replicationStatus(ctx, monitor),
        ...(ctx.settings.replication.sinks.length
          ? {
            walSinks: {
              sinks: ctx.settings.replication.sinks.map((x) => x.name),
              quorum: ctx.settings.replication.sinkQuorum,
              ...(booted?.gap ? { gapFetch: booted.gap } : {}),
            },
          }
          : {}),
        ...life.status(),
      }),
    });
    o.latch.onStop((why) => sup.requestStop(why));
    const ops = new Operations(ctx, sup, { admin, tls: () => tls });
    const monitor: ReplicationMonitor = new ReplicationMonitor(
      admin,
      () => ctx.replication,
      (): boolean => sup.postgresUp,
    );
    const repl = new ReplicationOps(ctx, sup, {
      admin,
      monitor,
      tls: () => tls?.material ?? booted?.tls,
      archivePromote: () => archiving?.service?.lineage.allowPromote(),
      archivePromoted: (timeline) => void archiving?.service?.afterPromotion(timeline),
    });
    life.attach({
      sup,
      admin,
      lock,
      archiveBacklog: () => Number(archiving?.status()["backlog"] ?? 0),
    });

    // ---- now: the operator surface ----------------------------------------------------
    runnables.add(
      "now",
      () =>
        controlRunnable(
          ctx,
          o.inOwnVm,
          makeDispatch(life.withCommands({
            ...controlCommands(sup, ops, {
              backup: {
                summary: "base backup to the archive target (pg_basebackup streamed to S3)",
                timeoutMs: 24 * 3600_000,
                run: (a) => {
                  if (!archiving?.service) {
                    throw new CommandError(
                      "unavailable",
                      "backup is not available: no archive target is configured (BEYOND_PG_ARCHIVE_TARGET)",
                    );
                  }
                  return runBackupChild(
                    ctx,
                    typeof a["label"] === "string" ? a["label"] : undefined,
                    { incremental: a["incremental"] === true },
                  ).then((m) => (archiveBackupTaken(ctx), m));
                },
              },
              verify: {
                summary:
                  "prove the backups restorable: objects against manifests, WAL continuous and readable (restore-test=true: and restore one for real)",
                timeoutMs: 24 * 3600_000,
                run: (a) => {
                  if (!archiving?.service) {
                    throw new CommandError(
                      "unavailable",
                      "verify is not available: no archive target is configured (BEYOND_PG_ARCHIVE_TARGET)",
                    );
                  }
                  return runVerifyChild(ctx, {
                    ...(typeof a["backup"] === "string" ? { backup: a["backup"] } : {}),
                    restoreTest: a["restore-test"] === true,
                  });
                },
              },
            }),
            ...replicationCommands(repl, monitor),
          })),
        ),
    );
    runnables.add("now", () =>
      ctx.settings.http
        ? httpRunnable(ctx.settings.http, {
          live: () => live(sup),
          ready: async () => {
            const r = await ready(sup, admin);
            const waiting = monitor.problem;
            return r.ready && waiting ? { ready: false, reason: waiting } : r;
          },
          json: { "/v1/pg/replication/lag": () => monitor.refresh() },
          metrics: async () =>
            renderFamilies(
              await collectMetrics(ctx, sup, admin, {
                extra: () => [
                  {
                    name: "beyond_pg_log_lines_dropped_total",
                    help: "Log lines dropped by the forwarder's rate limit or a slow sink.",
                    type: "counter",
                    samples: [{ value: forwarder.droppedTotal }],
                  },
                  ...(archiving?.metrics() ?? []),
                  ...replicationFamilies(monitor.last),
                  ...life.metrics(),
                ],
              }),
            ),
        })
        : undefined);

    // ---- booted: archiving ---------------------------------------------------------------
    runnables.add("booted", () => life.booted());
    runnables.add("booted", () => ({
      name: "archiving",
      start: async () => {
        archiving = await startArchiving(ctx, { ...(o.archivePromote ? { promote: true } : {}) });
      },
      close: () => archiving?.close(),
    }));

    // ---- ready: the TLS watcher, the recovery-point keeper, the replication monitor -----------
    runnables.add("ready", () => ({
      name: "replication-monitor",
      start: () => monitor.start(),
      close: () => monitor.close(),
    }));
    runnables.add("ready", () =>
      tls = new TlsWatcher({
        ctx,
        material: booted?.tls,
        problem: booted?.tlsProblem,
        apply: (m) => void applyConfig(ctx, m),
        reload: () => sup.signalChildren("SIGHUP"),
        clock: realClock,
      }));
    runnables.add("ready", () => life.ready());
    runnables.add(
      "ready",
      () =>
        archiving?.service && ctx.settings.archiveTimeoutS > 0
          ? rpoRunnable(ctx, admin)
          : undefined,
    );

    await runnables.enter("now");
    sup.ready.then(async () => {
      await runnables.enter("ready");
      o.onReady?.();
    });
    return await sup.run();
  } finally {
    await runnables.closeAll();
    await admin.close();
    await Promise.race([forwarder.flush(), sleep(2000)]);
    lock.close();
  }
}

/** The control protocol on its Unix socket, and on vsock as PID 1 in our VM (or when set). */
function controlRunnable(
  ctx: Context,
  inOwnVm: boolean,
  dispatch: ReturnType<typeof makeDispatch>,
): Runnable {
  const server = new ControlServer(dispatch);
  return {
    name: "control",
    start: () => {
      server.listenUnix(
        controlSocketTree(ctx.trees, ctx.settings.controlSocket),
        ctx.settings.controlSocket,
        { dirMode: 0o700 },
      );
      const port = ctx.settings.controlVsockPort ?? (inOwnVm ? 5000 : undefined);
      if (port === undefined) return;
      try {
        server.listenVsock(port, ctx.settings.controlVsockPeerCid);
        log.info(`control on vsock port ${port} (peer CID ${ctx.settings.controlVsockPeerCid})`);
      } catch (error) {
        log.warn(`control on vsock port ${port} unavailable: ${errorMessage(error)}`);
      }
    },
    close: () => server.close(),
  };
}

/** HTTP health and metrics; a port in use is one line naming the setting. */
function httpRunnable(
  addr: { hostname: string; port: number },
  h: Parameters<typeof serveHttp>[1],
): Runnable {
  let server: ReturnType<typeof serveHttp> | undefined;
  return {
    name: "http",
    start: () => {
      try {
        server = serveHttp(addr, h);
      } catch (error) {
        if (error instanceof Deno.errors.AddrInUse) {
          throw new OperatorError(
            `Cannot start: ${addr.hostname}:${addr.port} is already in use (BEYOND_PG_HTTP); stop what listens there, or set BEYOND_PG_HTTP to another address or off`,
            { exitCode: 2, cause: error },
          );
        }
        throw error;
      }
    },
    close: async () => {
      await server?.shutdown().catch(() => {});
    },
  };
}

/** The recovery point on a quiet database (wal/rpo.ts): switch a segment holding a commit. */
function rpoRunnable(ctx: Context, admin: Admin): Runnable {
  const keeper = new RpoKeeper({
    probe: async () => {
      // A standby writes nothing of its own (and cannot switch): nothing to keep.
      const [row] = await admin.query(
        `SELECT CASE WHEN pg_is_in_recovery() THEN '0'
           ELSE pg_snapshot_xmax(pg_current_snapshot())::text END AS xid,
         CASE WHEN pg_is_in_recovery() THEN '0/0'
           ELSE pg_current_wal_insert_lsn()::text END AS lsn`,
      );
      return {
        nextXid: BigInt(row?.["xid"] ?? "0"),
        segment: segmentAt(parseLsn(row?.["lsn"] ?? "") ?? 0n),
      };
    },
    switchWal: async () => void await admin.query("SELECT pg_switch_wal()"),
  }, { timeoutS: ctx.settings.archiveTimeoutS, clock: realClock });
  return { name: "rpo-keeper", start: () => keeper.start(), close: () => keeper.close() };
}

/** Replication in `status`: what this node is, and the last snapshot's essentials. */
function replicationStatus(ctx: Context, monitor: ReplicationMonitor): Record<string, unknown> {
  const r = ctx.replication;
  const snap = monitor.last;
  return {
    tier: ctx.settings.tier,
    role: r.role,
    name: ctx.settings.replication.standbyName,
    ...(r.role === "replica" && r.upstream
      ? { primary: `${r.upstream.host}:${r.upstream.port}` }
      : {}),
    ...(snap
      ? {
        inRecovery: snap.inRecovery,
        timeline: snap.timeline,
        lsn: snap.lsn,
        ...(snap.standbys ? { standbys: snap.standbys } : {}),
        ...(snap.sync ? { sync: snap.sync } : {}),
        ...(snap.receiver ? { receiver: snap.receiver } : {}),
      }
      : {}),
  };
}
