/**
 * `beyond-pg supervisor`: boot, start and supervise postgres + PgBouncer until SIGTERM/SIGINT
 * (the composition root, src/app/root.ts, does the work; PID 1 uses the same root).
 */
import { StopLatch } from "../app/latch.ts";
import { runDatabase } from "../app/root.ts";
import { buildContext } from "../boot/context.ts";
import { detectPlatform } from "../init/platform.ts";

export function main(_args: string[]): Promise<number> {
  return runSupervisor();
}

/** The supervisor as a plain process; `onReady` is called once 5432 serves (scripts/dev.ts). */
export async function runSupervisor(o: { onReady?: () => void } = {}): Promise<number> {
  // Listen for signals first: a stop that arrives while we gather settings must still count.
  const latch = new StopLatch();
  latch.listenToSignals();
  const inOwnVm = detectPlatform().inOwnVm;
  const ctx = await buildContext({ inOwnVm });
  return await runDatabase(ctx, { latch, inOwnVm, ...(o.onReady ? { onReady: o.onReady } : {}) });
}
