/**
 * EFFECT: when the archive was last verified: `<run dir>/archive/verified.json`, written by
 * `verify` (run by hand as root, or by the RPC) and read by the supervisor's metric. Root's run
 * dir only; a verify run by someone else (no run dir of ours) records nothing.
 */
import { RootTree } from "../fs/tree.ts";
import { archiveDir } from "../wal/config.ts";
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";

const FILE = "verified.json";

export function recordVerified(runDir: string, r: { verifiedAt: string; target: string }): void {
  try {
    const dir = RootTree.check(archiveDir(runDir), "BEYOND_PG_RUN_DIR");
    if (!dir.exists(dir.base)) return;
    dir.writeAtomic(
      `${dir.base}/${FILE}`,
      JSON.stringify({ verifiedAt: r.verifiedAt, target: r.target }) + "\n",
      0o644,
    );
  } catch (error) {
    log.debug(`verify: not recorded in ${runDir}: ${errorMessage(error)}`);
  }
}

/** Epoch seconds of the last successful verify of `target` (0: never). */
export function lastVerified(runDir: string, target: string): number {
  try {
    const doc = JSON.parse(Deno.readTextFileSync(`${archiveDir(runDir)}/${FILE}`));
    return doc.target === target ? Date.parse(doc.verifiedAt) / 1000 || 0 : 0;
  } catch {
    return 0;
  }
}
