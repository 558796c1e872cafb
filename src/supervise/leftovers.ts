/**
 * EFFECT: processes an earlier supervisor left behind (it was killed with -9 and its children
 * lived on). Only a postmaster running in *our* data directory, or a PgBouncer using *our*
 * config file, is ever signalled; a stale pid file pointing at anything else is removed.
 */
import { log } from "../util/log.ts";
import { readPostmasterPid } from "./postmaster_pid.ts";

function procState(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  const s = procState(pid);
  return s !== undefined && s !== "Z" && s !== "X";
}

function cmdline(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

function realpath(path: string): string | undefined {
  try {
    return Deno.realPathSync(path);
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !alive(pid);
}

async function escalate(pid: number, steps: [Deno.Signal, number][]): Promise<void> {
  for (const [sig, ms] of steps) {
    try {
      Deno.kill(pid, sig);
    } catch {
      return; // gone
    }
    if (await waitGone(pid, ms)) return;
  }
}

/** Stop a postmaster left running in `pgdata`, or clear a stale postmaster.pid. */
export async function handleLeftoverPostmaster(
  pgdata: string,
  stopTimeoutMs: number,
): Promise<void> {
  const info = readPostmasterPid(pgdata);
  if (!info) return;
  const ours = alive(info.pid) &&
    (cmdline(info.pid)[0] ?? "").includes("postgres") &&
    realpath(`/proc/${info.pid}/cwd`) === realpath(pgdata);
  if (!ours) {
    // postgres would refuse to start if the recorded pid now belongs to another process.
    if (alive(info.pid)) {
      log.warn(
        `postmaster.pid names pid ${info.pid}, which is not a postmaster of ${pgdata}; removing the stale file`,
      );
      try {
        Deno.removeSync(`${pgdata}/postmaster.pid`);
      } catch { /* raced */ }
    }
    return;
  }
  log.warn(
    `a postmaster (pid ${info.pid}) from an earlier supervisor is still running in ${pgdata}; stopping it`,
  );
  await escalate(info.pid, [["SIGINT", stopTimeoutMs], ["SIGQUIT", 5000], ["SIGKILL", 5000]]);
}

/** Stop a PgBouncer left running with our config file. */
export async function handleLeftoverPgbouncer(pidFile: string, iniPath: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(Deno.readTextFileSync(pidFile).trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid) || !cmdline(pid).includes(iniPath)) {
    // A stale pid file (or one naming a reused pid) would stop PgBouncer from starting.
    try {
      Deno.removeSync(pidFile);
    } catch { /* already gone */ }
    return;
  }
  log.warn(`a PgBouncer (pid ${pid}) from an earlier supervisor is still running; stopping it`);
  await escalate(pid, [["SIGTERM", 5000], ["SIGKILL", 5000]]);
}
