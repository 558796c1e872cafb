/** `beyond-pg supervisor`: boot, start and supervise postgres + PgBouncer until a stop signal. */
import { ensureDir } from "../boot/files.ts";
import { lockDataRoot } from "../boot/lock.ts";
import { buildContext } from "../context.ts";
import { Supervisor } from "../supervise/supervisor.ts";
import { stderrSink } from "./output.ts";

export interface SupervisorCliOptions {
  /** Called once, when 5432 first serves a ready database (dev prints DSNs here). */
  onReady?: () => void;
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

  const ctx = await buildContext();
  ensureDir(ctx.layout.dataRoot, 0o700, ctx.runAs.switchTo);
  const lock = await lockDataRoot(ctx.layout.lockFile);
  try {
    supervisor = new Supervisor(ctx, stderrSink);
    if (stopEarly) supervisor.requestStop(stopEarly);
    if (options.onReady) supervisor.ready.then(options.onReady);
    return await supervisor.run();
  } finally {
    lock.close();
  }
}
