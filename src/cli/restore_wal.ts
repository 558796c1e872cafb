/**
 * `beyond-pg restore-wal %f %p` — postgres's restore_command. Exit 1 only when the file is not
 * in the archive (that is how recovery finds the end of archived WAL); a store that is down or
 * a corrupt object are retried with backoff and then exit 126, which makes postgres stop rather
 * than end recovery early (and the supervisor starts it again). The file is written to a
 * temporary name and renamed, so %p never holds a partial file.
 */
import { readArchiveConfig } from "../wal/config.ts";
import { errorMessage } from "../util/errors.ts";

/** Backoff between attempts, within BEYOND_PG_RESTORE_RETRY_SECONDS (default 30) in all. */
function backoff(): number[] {
  const budget = Number(Deno.env.get("BEYOND_PG_RESTORE_RETRY_SECONDS") || 30) * 1000;
  const out: number[] = [];
  let total = 0;
  for (let d = Math.min(1000, budget / 4); total < budget && d > 0; d = Math.min(d * 2, 16_000)) {
    const step = Math.min(d, budget - total);
    out.push(step);
    total += step;
  }
  return out;
}

export async function main(args: string[]): Promise<number> {
  const [name, path] = args;
  if (!name || !path) {
    console.error("beyond-pg restore-wal: usage: restore-wal %f %p");
    return 126;
  }
  const runDir = Deno.env.get("BEYOND_PG_RUN_DIR") || "/run/beyond-pg";
  const cfg = readArchiveConfig(runDir);
  if (!cfg) return 1; // no archive: nothing to restore
  const { ArchiveError } = await import("../wal/archive.ts");
  const { writeWalFile } = await import("../wal/restore.ts");
  // The supervisor keeps a prefetched spool; ask it first.
  const { handOff } = await import("../wal/handoff.ts");
  // A temporary file left by a restore-wal that was killed is never %p itself: remove it.
  await Deno.remove(`${path}.beyond-tmp`).catch(() => {});
  const res = await handOff(cfg.socket, "restore", name, 10 * 60_000);
  if (res?.ok) {
    const r = res.result as { found: boolean; file?: string };
    if (!r.found) return 1;
    try {
      try {
        await Deno.rename(r.file!, path); // the spool is on the data volume: a rename
      } catch {
        writeWalFile(path, await Deno.readFile(r.file!)); // elsewhere: copy, then rename
        await Deno.remove(r.file!).catch(() => {});
      }
      return 0;
    } catch (error) {
      console.error(
        `beyond-pg restore-wal: ${name}: ${errorMessage(error)}`,
      );
      return 126;
    }
  }
  // Standalone, with retries for transient failures.
  const { clientFor } = await import("../wal/archive.ts");
  const { fetchWal } = await import("../wal/restore.ts");
  const client = clientFor(cfg);
  const ATTEMPTS = backoff();
  let last = "";
  for (let attempt = 0; attempt <= ATTEMPTS.length; attempt++) {
    try {
      const data = await fetchWal(client, cfg, name);
      if (!data) return 1;
      writeWalFile(path, data);
      return 0;
    } catch (error) {
      last = errorMessage(error);
      if (!(error instanceof ArchiveError) || !error.transient || attempt === ATTEMPTS.length) {
        break;
      }
      await new Promise((r) => setTimeout(r, ATTEMPTS[attempt]));
    }
  }
  console.error(
    `beyond-pg restore-wal: ${name}: ${last}; stopping recovery here (exit 126) rather than ending it early`,
  );
  return 126;
}
