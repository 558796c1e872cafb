/**
 * EFFECT: processes an earlier supervisor left behind (it was killed with -9 and its children
 * lived on). Only a postmaster of postgres's uid running in *our* data directory, or a
 * PgBouncer of postgres's uid using *our* config file, is ever signalled: the pid files are
 * postgres's to rewrite, so what they name is checked. A stale pid file is removed.
 */
import type { Tree } from "../fs/tree.ts";
import { alive, cmdline, readProcStat } from "../util/proc.ts";
import { log } from "../util/log.ts";
import { readPostmasterPid } from "./postmaster_pid.ts";
import { sleep } from "../util/sleep.ts";

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
    await sleep(20);
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

function ownedBy(pid: number, uid: number): boolean {
  return readProcStat(pid)?.uid === uid;
}

/** Stop a postmaster left running in `pgdata`, or clear a stale postmaster.pid. */
export async function handleLeftoverPostmaster(
  data: Tree,
  pgdata: string,
  uid: number,
  stopTimeoutMs: number,
): Promise<void> {
  const info = readPostmasterPid(data, pgdata);
  if (!info) return;
  const ours = alive(info.pid) && ownedBy(info.pid, uid) &&
    (cmdline(info.pid)[0] ?? "").includes("postgres") &&
    realpath(`/proc/${info.pid}/cwd`) === realpath(pgdata);
  if (!ours) {
    // postgres would refuse to start if the recorded pid now belongs to another process.
    if (alive(info.pid)) {
      log.warn(
        `postmaster.pid names pid ${info.pid}, which is not a postmaster of ${pgdata}; removing the stale file`,
      );
      data.remove(`${pgdata}/postmaster.pid`, false);
    }
    return;
  }
  log.warn(
    `a postmaster (pid ${info.pid}) from an earlier supervisor is still running in ${pgdata}; stopping it`,
  );
  await escalate(info.pid, [["SIGINT", stopTimeoutMs], ["SIGQUIT", 5000], ["SIGKILL", 5000]]);
}

/** Stop a PgBouncer left running with our config file. */
export async function handleLeftoverPgbouncer(
  dir: Tree,
  pidFile: string,
  iniPath: string,
  uid: number,
): Promise<void> {
  const text = dir.readText(pidFile);
  if (text === undefined) return;
  const pid = Number(text.trim());
  if (
    !Number.isInteger(pid) || pid <= 0 || !alive(pid) || !ownedBy(pid, uid) ||
    !cmdline(pid).includes(iniPath)
  ) {
    // A stale pid file (or one naming a reused pid) would stop PgBouncer from starting.
    dir.remove(pidFile, false);
    return;
  }
  log.warn(`a PgBouncer (pid ${pid}) from an earlier supervisor is still running; stopping it`);
  await escalate(pid, [["SIGTERM", 5000], ["SIGKILL", 5000]]);
}
