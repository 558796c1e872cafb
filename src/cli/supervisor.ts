/**
 * `beyond-pg supervisor`: boot, start and supervise postgres + PgBouncer until a stop signal,
 * serving the control protocol (Unix socket, vsock), HTTP health/metrics, and forwarding logs.
 */
import { ensureDir } from "../boot/files.ts";
import { lockDataRoot } from "../boot/lock.ts";
import { buildContext, type Context } from "../context.ts";
import { controlCommands } from "../control/api.ts";
import { makeDispatch } from "../control/commands.ts";
import { ControlServer } from "../control/server.ts";
import { serveHttp } from "../http/server.ts";
import { detectPlatform } from "../init/platform.ts";
import { LogForwarder } from "../logs/forwarder.ts";
import { StderrSink, VsockSink } from "../logs/sinks.ts";
import { collectMetrics } from "../metrics/collect.ts";
import { renderFamilies } from "../metrics/prom.ts";
import { Admin } from "../supervise/admin.ts";
import type { OutputPump } from "../supervise/child.ts";
import { Operations } from "../supervise/operations.ts";
import { Supervisor } from "../supervise/supervisor.ts";
import { errorMessage } from "../util/errors.ts";
import { log, setLogWriter } from "../util/log.ts";

export interface SupervisorCliOptions {
  /** Called once, when 5432 first serves a ready database (dev prints DSNs here). */
  onReady?: () => void;
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
    try {
      forwarder.setSink(await VsockSink.connect(s.logVsockCid, s.logVsockPort));
      log.info(`logs go to vsock ${s.logVsockCid}:${s.logVsockPort}`);
    } catch (error) {
      log.warn(
        `log vsock ${s.logVsockCid}:${s.logVsockPort} unavailable (${
          errorMessage(error)
        }); logging to stderr`,
      );
    }
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
  Deno.addSignalListener("SIGTERM", onSignal("SIGTERM"));
  Deno.addSignalListener("SIGINT", onSignal("SIGINT"));

  const platform = detectPlatform();
  const ctx = await buildContext({ inOwnVm: platform.inOwnVm });
  ensureDir(ctx.layout.dataRoot, 0o700, ctx.runAs.switchTo);
  const lock = await lockDataRoot(ctx.layout.lockFile);
  const forwarder = await setUpLogging(ctx, platform.inOwnVm);
  let control: ControlServer | undefined;
  let http: Deno.HttpServer | undefined;
  let admin: Admin | undefined;
  try {
    supervisor = new Supervisor(ctx, ctx.settings.logCapture ? forwarder : inheritOutput);
    if (stopEarly) supervisor.requestStop(stopEarly);
    const sup = supervisor;
    admin = new Admin({
      socketDir: ctx.layout.socketDir,
      directPort: ctx.settings.directPort,
      pgbouncerPort: ctx.settings.port,
      password: ctx.settings.password,
    });
    const ops = new Operations(ctx, sup, admin);
    const dispatch = makeDispatch(controlCommands(sup, ops));
    const server = control = new ControlServer(dispatch);
    server.listenUnix(ctx.settings.controlSocket);
    const vsockPort = ctx.settings.controlVsockPort ?? (platform.inOwnVm ? 5000 : undefined);
    if (vsockPort !== undefined) {
      try {
        server.listenVsock(vsockPort);
        log.info(`control on vsock port ${vsockPort}`);
      } catch (error) {
        log.warn(`control on vsock port ${vsockPort} unavailable: ${errorMessage(error)}`);
      }
    }
    if (ctx.settings.http) {
      const a = admin;
      http = serveHttp(ctx.settings.http, {
        live: () => sup.status().state !== "failed",
        ready: async () => {
          if (!sup.postgresUp || !sup.pgbouncerUp) {
            return { ready: false, reason: sup.status().reason };
          }
          try {
            await a.selectOneThroughPgbouncer(2000);
            return { ready: true, reason: `5432 serves queries` };
          } catch (error) {
            return { ready: false, reason: errorMessage(error) };
          }
        },
        metrics: async () =>
          renderFamilies(
            await collectMetrics(ctx, sup, a, {
              extra: () => [{
                name: "beyond_pg_log_lines_dropped_total",
                help: "Log lines dropped by the forwarder's rate limit or a slow sink.",
                type: "counter",
                samples: [{ value: forwarder.droppedTotal }],
              }],
            }),
          ),
      });
    }
    if (options.onReady) sup.ready.then(options.onReady);
    return await sup.run();
  } finally {
    control?.close();
    await http?.shutdown().catch(() => {});
    await admin?.close();
    await Promise.race([forwarder.flush(), new Promise((r) => setTimeout(r, 2000))]);
    lock.close();
  }
}
