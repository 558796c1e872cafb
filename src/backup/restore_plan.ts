/**
 * EFFECT (reads the archive): what a restore will do, decided before anything is written —
 * the timeline it follows (the prefix's primary's by default: its owner record; `--timeline N`
 * or `newest` explicitly), the newest base backup on that lineage before the target, and
 * whether the archived WAL is continuous from the backup to the target (chain.ts).
 */
import { type ChainResult, checkChain } from "./chain.ts";
import { listBackups } from "./basebackup.ts";
import {
  backupChain,
  type BackupManifest,
  chooseBackupOn,
  onLineage,
  type RestoreTarget,
} from "./manifest.ts";
import { clientFor, layoutFor, lineageOf, readOwner } from "../wal/archive.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import type { Lineage } from "../wal/lineage.ts";
import { parseLsn, walKind } from "../wal/names.ts";
import { OperatorError } from "../util/errors.ts";

export interface RestorePlan {
  backup: BackupManifest;
  /** The backups a restore unpacks, oldest first: `[backup]`, or (17+) its full backup and every incremental up to it. */
  backups: BackupManifest[];
  lineage: Lineage;
  /** The timeline the owner record names (the primary's). */
  ownerTimeline: number;
  chain: ChainResult;
  /** Every name in the archive's wal/. */
  archived: Set<string>;
}

/** The WAL file names in the archive. */
export async function archivedNames(cfg: ArchiveConfig): Promise<Set<string>> {
  const layout = layoutFor(cfg);
  const objects = await clientFor(cfg).list(layout.walPrefix);
  return new Set(
    objects.map((o) => o.key.slice(layout.walPrefix.length)).filter((n) =>
      walKind(n) !== undefined
    ),
  );
}

/** The newest timeline any history file in the archive names (1 without one). */
export function newestTimeline(archived: ReadonlySet<string>): number {
  let newest = 1;
  for (const n of archived) {
    if (walKind(n) === "history") newest = Math.max(newest, parseInt(n.slice(0, 8), 16));
  }
  return newest;
}

export async function planRestore(
  cfg: ArchiveConfig,
  target: RestoreTarget,
  o: { timeline?: string; backup?: string } = {},
): Promise<RestorePlan> {
  const client = clientFor(cfg);
  const [owner, archived, backups] = await Promise.all([
    readOwner(client, cfg.target),
    archivedNames(cfg),
    listBackups(cfg),
  ]);
  // A record from before lineage names no timeline: the newest is the best guess there is.
  const ownerTimeline = owner?.timeline ?? newestTimeline(archived);
  const wanted = o.timeline === undefined
    ? ownerTimeline
    : o.timeline === "newest" || o.timeline === "latest"
    ? newestTimeline(archived)
    : Number(o.timeline);
  let lineage: Lineage;
  try {
    lineage = await lineageOf(client, cfg, wanted);
  } catch (error) {
    throw new OperatorError(
      `cannot follow timeline ${wanted}: ${error instanceof Error ? error.message : error}`,
      { exitCode: 2 },
    );
  }
  let backup: BackupManifest | string;
  if (o.backup) {
    const b = backups.find((x) => x.label === o.backup);
    backup = !b
      ? `there is no backup labelled ${o.backup}; see \`beyond-pg backups list\``
      : !onLineage(b, lineage)
      ? `backup ${o.backup} (timeline ${b.timeline}) is not on timeline ${wanted}'s lineage; choose another backup or --timeline`
      : b;
  } else backup = chooseBackupOn(backups, target, lineage);
  if (typeof backup === "string") throw new OperatorError(backup, { exitCode: 2 });
  const base = backupChain(backup, backups);
  if (typeof base === "string") throw new OperatorError(base, { exitCode: 2 });
  const chain = checkChain({
    archived,
    lineage,
    start: { lsn: parseLsn(backup.start_lsn) ?? 0n, timeline: backup.timeline },
    ...(target.kind === "lsn" ? { until: target.lsn } : {}),
  });
  return { backup, backups: base, lineage, ownerTimeline, chain, archived };
}
