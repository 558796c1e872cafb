/**
 * `beyond-pg restore-wal %f %p` — postgres's restore_command. Exit 1 only when the file is not
 * in the archive (that is how recovery finds the end of archived WAL); a store that is down or
 * a corrupt object are retried with backoff and then exit 126, which makes postgres stop rather
 * than end recovery early (and the supervisor starts it again). The file is written to a
 * temporary name and renamed, so %p never holds a partial file.
 *
 * The supervisor fetches (it holds the credentials, and prefetches the next segments into its
 * spool); this command renames the file into place. Without a supervisor only root (by hand,
 * from the private config) can fetch; postgres's uid gets exit 126 and a line saying why.
 */
import { readArchiveConfig, readArchiveState } from "../wal/config.ts";
import { errorMessage } from "../util/errors.ts";
import { defaultRestoreRetrySeconds, runDirFrom } from "../settings/defaults.ts";
import { sleep } from "../util/sleep.ts";

/** Backoff between attempts, within BEYOND_PG_RESTORE_RETRY_SECONDS (default 30) in all. */
function backoff(): number[] {
  const budget =
    Number(Deno.env.get("BEYOND_PG_RESTORE_RETRY_SECONDS") || defaultRestoreRetrySeconds) * 1000;
  const out: number[] = [];
  let total = 0;
  for (let d = Math.min(1000, budget / 4); total < budget && d > 0; d = Math.min(d * 2, 16_000)) {
    const step = Math.min(d, budget - total);
    out.push(step);
    total += step;
  }
  return out;
}

/** The deepest directory holding both paths. */
function commonDir(a: string, b: string): string {
  const pa = a.split("/");
  const pb = b.split("/");
  let i = 0;
  while (i < pa.length - 1 && i < pb.length - 1 && pa[i] === pb[i]) i++;
  return pa.slice(0, i).join("/") || "/";
}

export async function main(args: string[]): Promise<number> {
  const [name, target] = args;
  if (!name || !target) {
    console.error("beyond-pg restore-wal: usage: restore-wal %f %p");
    return 126;
  }
  const runDir = runDirFrom();
  const state = readArchiveState(runDir);
  if (!state || state.mode !== "on") return 1; // no archive: nothing to restore
  // %p is relative to PGDATA, our working directory.
  const path = target.startsWith("/") ? target : `${Deno.cwd()}/${target}`;
  const { PgTree } = await import("../fs/tree.ts");
  const here = new PgTree(path.slice(0, path.lastIndexOf("/")) || "/", undefined);
  const { ArchiveError } = await import("../wal/errors.ts");
  const { writeWalFile } = await import("../wal/restore.ts");
  // The supervisor keeps a prefetched spool; ask it first.
  const { handOff } = await import("../wal/handoff.ts");
  const res = await handOff(state.socket, "restore", name, 10 * 60_000);
  if (res?.ok) {
    const r = res.result as { found: boolean; file?: string };
    if (!r.found) return 1;
    try {
      const both = new PgTree(commonDir(r.file!, path), undefined);
      try {
        both.rename(r.file!, path); // the spool is on the data volume: a rename
      } catch {
        writeWalFile(both, path, both.readBytes(r.file!)!); // elsewhere: copy, then rename
        both.remove(r.file!, false);
      }
      return 0;
    } catch (error) {
      console.error(`beyond-pg restore-wal: ${name}: ${errorMessage(error)}`);
      return 126;
    }
  }
  let cfg;
  try {
    cfg = readArchiveConfig(runDir);
  } catch { /* not root */ }
  if (!cfg) {
    console.error(
      `beyond-pg restore-wal: ${name}: the supervisor does not answer on ${state.socket}; stopping recovery here (exit 126) rather than ending it early`,
    );
    return 126;
  }
  // By hand, as root, with retries for transient failures.
  const { clientFor, WAL_ATTEMPTS } = await import("../wal/archive.ts");
  const { fetchWal } = await import("../wal/restore.ts");
  const client = clientFor(cfg, { attempts: WAL_ATTEMPTS });
  const ATTEMPTS = backoff();
  let last = "";
  for (let attempt = 0; attempt <= ATTEMPTS.length; attempt++) {
    try {
      const data = await fetchWal(client, cfg, name);
      if (!data) return 1;
      writeWalFile(here, path, data);
      return 0;
    } catch (error) {
      last = errorMessage(error);
      if (!(error instanceof ArchiveError) || !error.transient || attempt === ATTEMPTS.length) {
        break;
      }
      await sleep(ATTEMPTS[attempt] ?? 0);
    }
  }
  console.error(
    `beyond-pg restore-wal: ${name}: ${last}; stopping recovery here (exit 126) rather than ending it early`,
  );
  return 126;
}
