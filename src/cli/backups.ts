/**
 * `beyond-pg backups list [--json]` and
 * `beyond-pg backups prune (--keep N | --older-than 7d) [--dry-run]`: the base backups in the
 * archive. Prune applies its policy to each lineage (the primary's and each restore branch's)
 * and never removes the newest backup of one; it also removes the WAL that no kept backup's
 * recovery reads (history files are kept), interrupted uploads older than a day, and multipart
 * uploads left behind under the prefix (`--abandoned-after`, default 1d). Deletes go 1,000 keys
 * per request.
 */
import { describeBackup, listBackups } from "../backup/basebackup.ts";
import {
  type BackupManifest,
  onLineage,
  parseDuration,
  pruneSelection,
  sortBackups,
  walNeeded,
} from "../backup/manifest.ts";
import type { Lineage } from "../wal/lineage.ts";
import { resolveArchive } from "../backup/resolve.ts";
import { ABANDONED_AFTER_MS, abortAbandonedUploads } from "../backup/orphans.ts";
import { errorMessage } from "../util/errors.ts";
import { clientFor, layoutFor, lineageOf, readOwner } from "../wal/archive.ts";
import { parseSegment, walKind } from "../wal/names.ts";
import { parseArgs } from "./args.ts";

const USAGE =
  "usage: backups list [--json] | backups prune (--keep N | --older-than 7d) [--dry-run] [--abandoned-after 1d]";

export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args, {
    values: ["keep", "older-than", "abandoned-after"],
    flags: ["json", "dry-run"],
  });
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
    const abandonedText = parsed.values.get("abandoned-after");
    const abandonedMs = abandonedText === undefined
      ? ABANDONED_AFTER_MS
      : parseDuration(abandonedText);
    if (abandonedMs === undefined) {
      console.error(
        `beyond-pg backups prune: --abandoned-after ${
          JSON.stringify(abandonedText)
        } is not a duration (e.g. 1d, 12h)`,
      );
      return 2;
    }
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
    const client = clientFor(cfg);
    const layout = layoutFor(cfg);
    // Lineages: the primary's (the owner record's timeline) and each branch a backup is on.
    const owner = await readOwner(client, cfg.target);
    const ownerLineage = await lineageOf(client, cfg, owner?.timeline ?? 1);
    const lineages = new Map<number, Lineage>([[ownerLineage.timeline, ownerLineage]]);
    const lineageFor = async (b: BackupManifest): Promise<Lineage> => {
      if (onLineage(b, ownerLineage)) return ownerLineage;
      if (!lineages.has(b.timeline)) {
        lineages.set(
          b.timeline,
          await lineageOf(client, cfg, b.timeline).catch(() => ({
            timeline: b.timeline,
            ancestors: [],
          })),
        );
      }
      return lineages.get(b.timeline)!;
    };
    const of = new Map<string, Lineage>();
    for (const b of backups) of.set(b.label, await lineageFor(b));
    const doomed = pruneSelection(
      backups,
      {
        ...(keep !== undefined ? { keep } : {}),
        ...(olderThanMs !== undefined ? { olderThanMs } : {}),
      },
      now,
      (b) => String(of.get(b.label)!.timeline),
    );
    const kept = backups.filter((b) => !doomed.includes(b));
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
    // WAL no kept backup's recovery reads (on any lineage it follows); history files stay.
    const keptWith = kept.map((b) => ({ backup: b, lineage: of.get(b.label)! }));
    const perTimeline = new Map<number, { count: number; below: string }>();
    let walRemoved = 0;
    if (doomed.length) {
      for (const o of await client.list(layout.walPrefix)) {
        const name = o.key.slice(layout.walPrefix.length);
        const kind = walKind(name);
        const id = parseSegment(name);
        if (!kind || kind === "history" || kind === "backup" || !id) continue;
        if (walNeeded(id, keptWith)) continue;
        keys.push(o.key);
        walRemoved++;
        const t = perTimeline.get(id.timeline) ?? { count: 0, below: name };
        t.count++;
        if (name > t.below) t.below = name;
        perTimeline.set(id.timeline, t);
      }
    }
    for (const b of doomed) {
      const l = of.get(b.label)!;
      console.log(
        `${dry ? "would remove" : "removing"} ${describeBackup(b)} [${
          l === ownerLineage ? `primary, timeline ${l.timeline}` : `branch, timeline ${l.timeline}`
        }]`,
      );
    }
    for (const [t, w] of [...perTimeline].sort((a, b) => a[0] - b[0])) {
      console.log(
        `${
          dry ? "would remove" : "removing"
        } timeline ${t}: ${w.count} WAL file(s) up to ${w.below}, which no kept backup reads`,
      );
    }
    if (!dry) await client.deleteMany(keys);
    const orphans = await abortAbandonedUploads(client, layout.target.prefix, {
      maxAgeMs: abandonedMs,
      now,
      dryRun: dry,
    });
    for (const u of orphans.uploads) {
      console.log(
        `${
          dry ? "would abort" : "aborted"
        } an upload left behind: ${u.key} (started ${u.initiated.toISOString()})`,
      );
    }
    console.log(
      `${
        dry ? "would remove" : "removed"
      } ${doomed.length} backup(s) and ${walRemoved} WAL file(s), ${
        dry ? "would abort" : "aborted"
      } ${orphans.uploads.length} abandoned upload(s); kept ${kept.length}`,
    );
    return 0;
  } catch (error) {
    console.error(`beyond-pg backups: ${errorMessage(error)}`);
    return 1;
  }
}
