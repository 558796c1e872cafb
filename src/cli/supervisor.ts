/**
 * `beyond-pg supervisor`: boot, start and supervise postgres + PgBouncer until a stop signal,
 * serving the control protocol (Unix socket, vsock), HTTP health/metrics, and forwarding logs.
 */
import { lockDataRoot } from "../boot/lock.ts";
import { controlSocketTree, makeTrees } from "../boot/trees.ts";
import { buildContext, type Context } from "../context.ts";
import { controlCommands } from "../control/api.ts";
import { CommandError, makeDispatch } from "../control/commands.ts";
import { runBackupChild } from "../backup/child.ts";
import { archiveBackupTaken, type Archiving, startArchiving } from "../wal/setup.ts";
import { ControlServer } from "../control/server.ts";
import { type HttpServer, serveHttp } from "../http/server.ts";
import { maxClientConn, PGBOUNCER_FD_HEADROOM } from "../config/pgbouncer.ts";
import { raiseFdLimit } from "../process/fd_limit.ts";
import { detectPlatform } from "../init/platform.ts";
import { LogForwarder } from "../logs/forwarder.ts";
import { StderrSink, VsockSink } from "../logs/sinks.ts";
import { collectMetrics } from "../metrics/collect.ts";
import { renderFamilies } from "../metrics/prom.ts";
import { Admin } from "../supervise/admin.ts";
import type { OutputPump } from "../supervise/child.ts";
import { Operations } from "../supervise/operations.ts";
import { Supervisor } from "../supervise/supervisor.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log, setLogWriter } from "../util/log.ts";
import { realClock } from "../util/clock.ts";
import { RpoKeeper, segmentAt } from "../wal/rpo.ts";
import { parseLsn } from "../wal/names.ts";

export interface SupervisorCliOptions {
  /** Called once, when 5432 first serves a ready database (dev prints DSNs here). */
  onReady?: () => void;
  /** A context already built (PID 1 builds it before mounting the data disk). */
  context?: Context;
  /** PID 1 in our own VM (vsock defaults on). */
  inOwnVm?: boolean;
  /** false: the caller (PID 1) owns the signal listeners and calls the stop given to onStopHook. */
  manageSignals?: boolean;
  onStopHook?: (stop: (why: string) => void) => void;
  /** See SupervisorHooks.failFast (restore). */
  failFast?: () => boolean;
  /** This cluster takes its archive prefix's lineage over (restore --promote-as-primary). */
  archivePromote?: boolean;
}

/** Children write straight to our stderr (BEYOND_PG_LOG_CAPTURE=false). */
const inheritOutput: OutputPump = { inherit: true, pump: () => Promise.resolve() };

async function setUpLogging(ctx: Context, inOwnVm: boolean): Promise<LogForwarder> {
  const s = ctx.settings;
  const forwarder = new LogForwarder(new StderrSink(), {
    rate: s.logRate,
    burst: s.logBurst,
    maxLineBytes: s.logMaxLine,
  });
  setLogWriter((line) => forwarder.write("beyond-pg", line.replace(/^\[beyond-pg\] /, "")));
  const wantVsock = s.logVsock === "true" || (s.logVsock === "auto" && inOwnVm);
  if (wantVsock) {
    // Until the receiver answers (and whenever it goes away), logs go to stderr; retried.
    const connect = async (first: boolean) => {
      try {
        const sink = await VsockSink.connect(s.logVsockCid, s.logVsockPort, 1000, () => {
          forwarder.setSink(new StderrSink());
          log.warn(
            `log vsock ${s.logVsockCid}:${s.logVsockPort} went away; logging to stderr and retrying`,
          );
          setTimeout(() => connect(false), 2000);
        });
        forwarder.setSink(sink);
        log.info(`logs go to vsock ${s.logVsockCid}:${s.logVsockPort}`);
      } catch (error) {
        if (first) {
          log.warn(
            `log vsock ${s.logVsockCid}:${s.logVsockPort} unavailable (${
              errorMessage(error)
            }); logging to stderr, retrying`,
          );
        }
        setTimeout(() => connect(false), 2000);
      }
    };
    await connect(true);
  }
  return forwarder;
}

export async function main(_args: string[], options: SupervisorCliOptions = {}): Promise<number> {
  // Listen for signals first: a stop that arrives while we gather settings must still count
  // (and Deno as PID 1 without a SIGTERM listener crashes on SIGTERM).
  let supervisor: Supervisor | undefined;
  let stopEarly: string | undefined;
  const onSignal = (sig: Deno.Signal) => () => {
    if (supervisor) supervisor.requestStop(sig);
    else stopEarly = sig;
  };
  if (options.manageSignals ?? true) {
    Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
    Deno.addSignalListener("SIGINT", onSignal("SIGINT"));
  }
  options.onStopHook?.((why) => {
    if (supervisor) supervisor.requestStop(why);
    else stopEarly = why;
  });

  const inOwnVm = options.inOwnVm ?? detectPlatform().inOwnVm;
  const ctx = options.context ?? await buildContext({ inOwnVm });
  makeTrees(ctx.trees);
  const lock = await lockDataRoot(ctx.trees.data, ctx.layout.lockFile);
  const forwarder = await setUpLogging(ctx, inOwnVm);
  let control: ControlServer | undefined;
  let http: HttpServer | undefined;
  let admin: Admin | undefined;
  let archiving: Archiving | undefined;
  let rpo: RpoKeeper | undefined;
  try {
    // Before any child starts: postgres and PgBouncer inherit it.
    const fdLimit = raiseFdLimit(maxClientConn(ctx.ramMb) + PGBOUNCER_FD_HEADROOM);
    if (fdLimit.warning) log.warn(fdLimit.warning);
    supervisor = new Supervisor(ctx, ctx.settings.logCapture ? forwarder : inheritOutput, {
      ...(options.failFast ? { failFast: options.failFast } : {}),
      afterBoot: async () => {
        archiving = await startArchiving(ctx, {
          ...(options.archivePromote ? { promote: true } : {}),
        });
      },
      archiveStatus: () => archiving?.status() ?? { target: null },
    });
    if (stopEarly) supervisor.requestStop(stopEarly);
    const sup = supervisor;
    admin = new Admin({
      socketDir: ctx.layout.socketDir,
      directPort: ctx.settings.directPort,
      pgbouncerPort: ctx.settings.port,
      password: ctx.settings.password,
    });
    const ops = new Operations(ctx, sup, admin);
    const dispatch = makeDispatch(controlCommands(sup, ops, {
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
          return runBackupChild(ctx, typeof a["label"] === "string" ? a["label"] : undefined)
            .then((m) => (archiveBackupTaken(ctx), m));
        },
      },
    }));
    const server = control = new ControlServer(dispatch);
    server.listenUnix(
      controlSocketTree(ctx.trees, ctx.settings.controlSocket),
      ctx.settings.controlSocket,
      {
        dirMode: 0o700,
      },
    );
    const vsockPort = ctx.settings.controlVsockPort ?? (inOwnVm ? 5000 : undefined);
    if (vsockPort !== undefined) {
      try {
        server.listenVsock(vsockPort, ctx.settings.controlVsockPeerCid);
        log.info(
          `control on vsock port ${vsockPort} (peer CID ${ctx.settings.controlVsockPeerCid})`,
        );
      } catch (error) {
        log.warn(`control on vsock port ${vsockPort} unavailable: ${errorMessage(error)}`);
      }
    }
    if (ctx.settings.http) {
      const a = admin;
      http = listenHttp(ctx.settings.http, {
        live: () => sup.status().state !== "failed",
        ready: async () => {
          const before = sup.status();
          if (!sup.postgresUp || !sup.pgbouncerUp) return { ready: false, reason: before.reason };
          try {
            await a.selectOneThroughPgbouncer(2000);
          } catch (error) {
            return { ready: false, reason: errorMessage(error) };
          }
          // The query may have waited in PgBouncer while postgres crashed and came back: a probe
          // that overlapped a restart reports it once instead of hiding it.
          const { restarts } = sup.status();
          const restarted = (["postgres", "pgbouncer"] as const).find((p) =>
            restarts[p] !== before.restarts[p]
          );
          return restarted
            ? { ready: false, reason: `${restarted} restarted during the check` }
            : { ready: true, reason: `5432 serves queries` };
        },
        metrics: async () =>
          renderFamilies(
            await collectMetrics(ctx, sup, a, {
              extra: () => [{
                name: "beyond_pg_log_lines_dropped_total",
                help: "Log lines dropped by the forwarder's rate limit or a slow sink.",
                type: "counter",
                samples: [{ value: forwarder.droppedTotal }],
              }, ...(archiving?.metrics() ?? [])],
            }),
          ),
      });
    }
    if (options.onReady) sup.ready.then(options.onReady);
    // The recovery point on a quiet database (wal/rpo.ts): switch a segment holding a commit.
    const rpoSeconds = ctx.settings.archiveTimeoutS;
    if (rpoSeconds > 0) {
      const a = admin;
      sup.ready.then(() => {
        if (!archiving?.service || sup.stopping) return;
        rpo = new RpoKeeper({
          probe: async () => {
            const [row] = await a.query(
              "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS xid, pg_current_wal_insert_lsn()::text AS lsn",
            );
            return {
              nextXid: BigInt(row?.["xid"] ?? "0"),
              segment: segmentAt(parseLsn(row?.["lsn"] ?? "") ?? 0n),
            };
          },
          switchWal: async () => void await a.query("SELECT pg_switch_wal()"),
        }, { timeoutS: rpoSeconds, clock: realClock });
        rpo.start();
      });
    }
    return await sup.run();
  } finally {
    control?.close();
    rpo?.close();
    archiving?.close();
    await http?.shutdown().catch(() => {});
    await admin?.close();
    await Promise.race([forwarder.flush(), new Promise((r) => setTimeout(r, 2000))]);
    lock.close();
  }
}

/** serveHttp, with a port in use as one line naming the setting. */
function listenHttp(
  addr: { hostname: string; port: number },
  h: Parameters<typeof serveHttp>[1],
): ReturnType<typeof serveHttp> {
  try {
    return serveHttp(addr, h);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new OperatorError(
        `Cannot start: ${addr.hostname}:${addr.port} is already in use (BEYOND_PG_HTTP); stop what listens there, or set BEYOND_PG_HTTP to another address or off`,
        { exitCode: 2, cause: error },
      );
    }
    throw error;
  }
}
