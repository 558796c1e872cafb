import type { Tree } from "../fs/tree.ts";
import { sleep } from "../util/sleep.ts";

/**
 * Readiness without a SQL polling loop: postmaster.pid's 8th line is the postmaster's status
 * ("starting", "stopping", "ready", "standby"), which it rewrites itself.
 */

export interface PostmasterPid {
  pid: number;
  dataDir: string;
  port: number;
  socketDir: string;
  status: string;
}

/** PURE */
export function parsePostmasterPid(text: string): PostmasterPid | undefined {
  const lines = text.split("\n");
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return {
    pid,
    dataDir: lines[1] ?? "",
    port: Number(lines[3] ?? 0),
    socketDir: lines[4] ?? "",
    status: (lines[7] ?? "").trim(),
  };
}

/** postmaster.pid, read as postgres (`data` is its tree: the file is postgres's to rewrite). */
export function readPostmasterPid(data: Tree, pgdata: string): PostmasterPid | undefined {
  try {
    const text = data.readText(`${pgdata}/postmaster.pid`);
    return text === undefined ? undefined : parsePostmasterPid(text);
  } catch {
    return undefined;
  }
}

/**
 * Resolve when the postmaster with `pid` says "ready"; reject-free: returns false when
 * `gone` settles first (the process exited) or the signal aborts. Polled, not watched:
 * Deno.watchFs opens the path of every event in the directory (as root, following links, on a
 * thread all watchers share), so a FIFO or link postgres makes in PGDATA would hang it or make
 * root open what postgres names.
 */
export async function waitReady(
  data: Tree,
  pgdata: string,
  pid: number,
  gone: Promise<unknown>,
  signal: AbortSignal,
): Promise<boolean> {
  let exited = false;
  gone.then(() => (exited = true), () => (exited = true));
  const started = performance.now();
  while (!exited && !signal.aborted) {
    const info = readPostmasterPid(data, pgdata);
    if (info?.pid === pid && info.status === "ready") return true;
    // Tight (≤ 5 ms) through any warm start or crash recovery of ordinary size, so a wake sees
    // "ready" within a few ms; gentler once it is clearly a long recovery (a restore).
    const elapsed = performance.now() - started;
    await sleep(elapsed < 2000 ? 3 : elapsed < 60_000 ? 5 : 50);
  }
  return false;
}
