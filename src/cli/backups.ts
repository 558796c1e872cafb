/**
 * `beyond-pg backups list [--json]` and
 * `beyond-pg backups prune (--keep N | --older-than 7d) [--dry-run]`: the base backups in the
 * archive. Prune never removes the newest backup; it also removes the WAL that only the
 * removed backups needed (history files are kept), and interrupted uploads older than a day.
 */
import { describeBackup, listBackups } from "../backup/basebackup.ts";
import { parseDuration, pruneSelection, sortBackups } from "../backup/manifest.ts";
import { resolveArchive } from "../backup/resolve.ts";
import { errorMessage } from "../util/errors.ts";
import { clientFor, layoutFor } from "../wal/archive.ts";
import { parseSegment, walKind } from "../wal/names.ts";
import { parseArgs } from "./args.ts";

const USAGE =
  "usage: backups list [--json] | backups prune (--keep N | --older-than 7d) [--dry-run]";

export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args, { values: ["keep", "older-than"], flags: ["json", "dry-run"] });
  if (typeof parsed === "string") {
    console.error(`beyond-pg backups: ${parsed}; ${USAGE}`);
    return 2;
  }
  const [verb] = parsed.positional;
  if (verb !== "list" && verb !== "prune") {
    console.error(`beyond-pg backups: ${USAGE}`);
    return 2;
  }
  try {
    const cfg = await resolveArchive();
    const backups = sortBackups(await listBackups(cfg));
    if (verb === "list") {
      if (parsed.flags.has("json")) console.log(JSON.stringify(backups));
      else if (!backups.length) console.log(`no base backups in ${cfg.target}`);
      else for (const b of backups) console.log(describeBackup(b));
      return 0;
    }
    const keepText = parsed.values.get("keep");
    const olderText = parsed.values.get("older-than");
    const keep = keepText === undefined ? undefined : Number(keepText);
    const olderThanMs = olderText === undefined ? undefined : parseDuration(olderText);
    if (
      (keep === undefined && olderThanMs === undefined) ||
      (keep !== undefined && !(Number.isInteger(keep) && keep >= 1)) ||
      (olderText !== undefined && olderThanMs === undefined)
    ) {
      console.error(
        `beyond-pg backups prune: give --keep N (N ≥ 1) or --older-than DURATION (e.g. 7d, 12h)`,
      );
      return 2;
    }
    const now = new Date();
    const doomed = pruneSelection(backups, {
      ...(keep !== undefined ? { keep } : {}),
      ...(olderThanMs !== undefined ? { olderThanMs } : {}),
    }, now);
    const kept = backups.filter((b) => !doomed.includes(b));
    const client = clientFor(cfg);
    const layout = layoutFor(cfg);
    const dry = parsed.flags.has("dry-run");
    const objects = await client.list(layout.backupsPrefix);
    const labels = new Set(kept.map((b) => b.label));
    const doomedLabels = new Set(doomed.map((b) => b.label));
    const keys: string[] = [];
    for (const o of objects) {
      const label = o.key.slice(layout.backupsPrefix.length).split("/")[0]!;
      if (labels.has(label)) continue;
      const abandoned = !backups.some((b) => b.label === label) &&
        now.getTime() - o.lastModified.getTime() > 86_400_000;
      if (doomedLabels.has(label) || abandoned) keys.push(o.key);
    }
    // WAL older than the oldest kept backup's start is needed by no kept backup.
    const oldest = kept.at(-1);
    const floor = oldest ? parseSegment(oldest.start_wal) : undefined;
    let walRemoved = 0;
    if (floor && doomed.length) {
      for (const o of await client.list(layout.walPrefix)) {
        const name = o.key.slice(layout.walPrefix.length);
        const kind = walKind(name);
        const id = parseSegment(name);
        if (!kind || kind === "history" || !id || id.number >= floor.number) continue;
        keys.push(o.key);
        walRemoved++;
      }
    }
    for (const b of doomed) {
      console.log(`${dry ? "would remove" : "removing"} ${describeBackup(b)}`);
    }
    if (!dry) {
      for (const key of keys) await client.delete(key);
    }
    console.log(
      `${
        dry ? "would remove" : "removed"
      } ${doomed.length} backup(s) and ${walRemoved} WAL file(s); kept ${kept.length}`,
    );
    return 0;
  } catch (error) {
    console.error(`beyond-pg backups: ${errorMessage(error)}`);
    return 1;
  }
}
