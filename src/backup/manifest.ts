/**
 * PURE: base backup manifests, choosing the backup for a restore target, and prune policy.
 * A backup exists once its manifest.json is stored (written last); objects without one are an
 * interrupted upload.
 */
import { formatLsn, parseLsn } from "../wal/names.ts";
import { endOf, type Lineage, onPath } from "../wal/lineage.ts";

export interface BackupManifest {
  format: 1;
  label: string;
  system_identifier: string;
  major: number;
  pg_version: string;
  timeline: number;
  start_lsn: string;
  stop_lsn: string;
  /** The first WAL segment the backup needs (older WAL is only for older backups). */
  start_wal: string;
  start_time: string;
  stop_time: string;
  /** Uncompressed tar size, stored (compressed) size, SHA-256 of the stored object. */
  bytes: number;
  stored_bytes: number;
  sha256: string;
  codec: "zstd" | "none";
  object: string;
  parts: number;
  /** The planned part size (backup/parts.ts partSize gives each part's) and each part's SHA-256: restore checks each range as it arrives. Absent in older manifests. */
  part_size?: number;
  part_sha256?: string[];
  /** PostgreSQL 17+: `incremental` holds only what changed since `parent` (pg_combinebackup). */
  kind?: "full" | "incremental";
  parent?: string;
  /** pg_basebackup's own manifest, stored beside (PostgreSQL 17+): a later incremental's base. */
  pg_manifest?: string;
  /** Client-side encryption (wal/envelope.ts): the object is sealed with this key. */
  encryption?: { algorithm: string; key_id: string };
  /** Why the backup is not what was asked for (--incremental that had to be full). */
  note?: string;
  duration_ms: number;
}

export type RestoreTarget =
  | { kind: "time"; at: Date; text: string }
  | { kind: "lsn"; lsn: bigint }
  | { kind: "latest" };

export function newLabel(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export function validLabel(label: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(label);
}

/**
 * "2026-11-23 15:30:00.123456+01", ISO 8601 with T or Z...; no zone means UTC. Returns the
 * instant (for choosing a backup) and the text postgres gets (microseconds kept).
 */
export function parseTargetTime(text: string): { at: Date; text: string } | undefined {
  const m = text.trim().match(
    /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i,
  );
  if (!m) return undefined;
  const zone = m[3] ? (m[3].toUpperCase() === "Z" ? "+00:00" : m[3]) : "+00:00";
  const normZone = /^[+-]\d{2}$/.test(zone)
    ? `${zone}:00`
    : zone.replace(/^([+-]\d{2})(\d{2})$/, "$1:$2");
  const at = new Date(`${m[1]}T${m[2]}${normZone}`);
  if (Number.isNaN(at.getTime())) return undefined;
  return { at, text: `${m[1]} ${m[2]}${normZone}` };
}

/** "7d", "12h", "30m", "2w" → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = text.trim().match(/^(\d+)\s*(s|m|h|d|w)$/);
  if (!m) return undefined;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[m[2]!]!;
  return Number(m[1]) * unit;
}

function lsnOf(text: string): bigint {
  return parseLsn(text) ?? 0n;
}

/** Newest first. */
export function sortBackups(list: BackupManifest[]): BackupManifest[] {
  return [...list].sort((a, b) =>
    a.stop_time === b.stop_time
      ? (lsnOf(b.stop_lsn) > lsnOf(a.stop_lsn) ? 1 : -1)
      : a.stop_time < b.stop_time
      ? 1
      : -1
  );
}

/** The newest backup that is consistent before the target, or a one-line reason. */
export function chooseBackup(
  list: BackupManifest[],
  target: RestoreTarget,
): BackupManifest | string {
  if (!list.length) {
    return "there are no base backups in the archive; take one with `beyond-pg backup`";
  }
  const sorted = sortBackups(list);
  if (target.kind === "latest") return sorted[0]!;
  const fits = target.kind === "time"
    ? sorted.find((b) => new Date(b.stop_time).getTime() <= target.at.getTime())
    : sorted.find((b) => lsnOf(b.stop_lsn) <= target.lsn);
  if (fits) return fits;
  const oldest = sorted.at(-1)!;
  return target.kind === "time"
    ? `${target.at.toISOString()} is before the oldest base backup (${oldest.label}, consistent at ${oldest.stop_time}); choose a later --to-time`
    : `${
      formatLsn(target.lsn)
    } is before the oldest base backup (${oldest.label}, consistent at ${oldest.stop_lsn}); choose a later --to-lsn`;
}

/**
 * Which backups a prune removes. The policy applies to each lineage on its own (the primary's,
 * and each branch a restore made); the newest backup of each is always kept, so a backup taken
 * on a test restore can never push the primary's last restore point out; and a backup a kept
 * incremental one builds on is kept, however old.
 */
export function pruneSelection(
  list: BackupManifest[],
  policy: { keep?: number; olderThanMs?: number },
  now: Date,
  lineageOf: (b: BackupManifest) => string = () => "",
): BackupManifest[] {
  const groups = new Map<string, BackupManifest[]>();
  for (const b of list) groups.set(lineageOf(b), [...(groups.get(lineageOf(b)) ?? []), b]);
  return keepChains(list, [...groups.values()].flatMap((g) => pruneGroup(g, policy, now)));
}

/**
 * The backups a restore from `b` needs, oldest first: the full backup and each incremental on
 * top of it up to `b` (just `[b]` for a full one), or a one-line reason one is missing.
 */
export function backupChain(b: BackupManifest, all: BackupManifest[]): BackupManifest[] | string {
  const byLabel = new Map(all.map((x) => [x.label, x]));
  const chain = [b];
  for (let cur = b; cur.kind === "incremental";) {
    const parent = cur.parent === undefined ? undefined : byLabel.get(cur.parent);
    if (!parent || chain.includes(parent)) {
      return `backup ${b.label} is incremental to ${
        cur.parent ?? "an unnamed backup"
      }, which is not in the archive; restore from another backup`;
    }
    chain.unshift(parent);
    cur = parent;
  }
  return chain;
}

/**
 * The backup an incremental one builds on: the newest on this lineage whose PostgreSQL manifest
 * is stored, or a one-line reason there is none.
 */
export function chooseParent(all: BackupManifest[], l: Lineage): BackupManifest | string {
  const fits = sortBackups(all).filter((b) => onLineage(b, l) && b.pg_manifest);
  return fits[0] ??
    "there is no backup to be incremental to (none taken on PostgreSQL 17 or later on this timeline)";
}

/** Never break a chain: a backup some kept incremental builds on is kept too. */
function keepChains(all: BackupManifest[], doomed: BackupManifest[]): BackupManifest[] {
  const byLabel = new Map(all.map((b) => [b.label, b]));
  const needed = new Set<string>();
  for (const b of all) {
    if (doomed.includes(b)) continue;
    for (let cur = b; cur.kind === "incremental" && cur.parent !== undefined;) {
      const parent = byLabel.get(cur.parent);
      if (!parent || needed.has(parent.label)) break;
      needed.add(parent.label);
      cur = parent;
    }
  }
  return doomed.filter((b) => !needed.has(b.label));
}

function pruneGroup(
  list: BackupManifest[],
  policy: { keep?: number; olderThanMs?: number },
  now: Date,
): BackupManifest[] {
  const sorted = sortBackups(list);
  return sorted.filter((b, i) => {
    if (i === 0) return false;
    if (policy.keep !== undefined && i < policy.keep) return false;
    if (
      policy.olderThanMs !== undefined &&
      now.getTime() - new Date(b.stop_time).getTime() < policy.olderThanMs
    ) {
      return false;
    }
    return policy.keep !== undefined || policy.olderThanMs !== undefined;
  });
}

/** Can recovery on this lineage start from the backup (its timeline, before it branched off)? */
export function onLineage(b: BackupManifest, l: Lineage): boolean {
  if (!onPath(l, b.timeline)) return false;
  const end = endOf(l, b.timeline);
  return end === undefined || lsnOf(b.start_lsn) < end;
}

/**
 * The newest backup on the lineage that is consistent before the target, or a one-line reason
 * (backups of other branches are not candidates: recovery could not reach the lineage from
 * them).
 */
export function chooseBackupOn(
  list: BackupManifest[],
  target: RestoreTarget,
  l: Lineage,
): BackupManifest | string {
  const fits = list.filter((b) => onLineage(b, l));
  if (list.length && !fits.length) {
    return `no base backup is on timeline ${l.timeline}'s lineage (${list.length} backup(s) of other branches); take one with \`beyond-pg backup\` on the primary, or choose --timeline`;
  }
  return chooseBackup(fits, target);
}

/** A WAL file a prune may delete: no kept backup's recovery reads it (`lineages[i]` is kept[i]'s). */
export function walNeeded(
  name: { timeline: number; number: bigint },
  kept: { backup: BackupManifest; lineage: Lineage }[],
  segmentBytes = 16 << 20,
): boolean {
  return kept.some(({ backup, lineage }) =>
    onPath(lineage, name.timeline) &&
    name.number >= lsnOf(backup.start_lsn) / BigInt(segmentBytes)
  );
}
