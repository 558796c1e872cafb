/**
 * The volume's own record of being archived: PGDATA/beyond/archive.json (it forks and travels
 * with the data). Once a volume has been archived, booting it without a target must not
 * silently drop WAL: `archive` fails (postgres keeps its WAL) until the target is back, or
 * archiving is switched off on purpose (BEYOND_PG_ARCHIVE_TARGET=off, recorded here); a
 * target after that starts with a gap, which a fresh base backup closes.
 */
import type { PgTree } from "../fs/tree.ts";

export interface ArchiveMarker {
  /** The target this volume was last archived to. */
  target: string;
  since: string;
  /** Switched off on purpose (ISO time). */
  off?: string;
  /** Archiving resumed after it was off, or moved to another target: restores need a newer backup. */
  gapSince?: string;
}

export function markerPath(stateDir: string): string {
  return `${stateDir}/archive.json`;
}

export function readMarker(data: PgTree, stateDir: string): ArchiveMarker | undefined {
  try {
    const text = data.readText(markerPath(stateDir));
    return text === undefined ? undefined : JSON.parse(text) as ArchiveMarker;
  } catch {
    return undefined; // unreadable: as if none (it is postgres's file, not a secret)
  }
}

export function writeMarker(data: PgTree, stateDir: string, m: ArchiveMarker): void {
  data.writeIfChanged(markerPath(stateDir), JSON.stringify(m) + "\n", 0o600);
}

/**
 * PURE: the marker after a boot with `target` (undefined: none; `off`: switched off on
 * purpose), and what it means now.
 */
export function nextMarker(
  before: ArchiveMarker | undefined,
  o: { target: string | undefined; off: boolean; now: Date },
): { marker: ArchiveMarker | undefined; mode: "on" | "missing" | "none"; gap: boolean } {
  const at = o.now.toISOString();
  if (o.target) {
    const gap = before !== undefined && (before.off !== undefined || before.target !== o.target);
    const marker: ArchiveMarker = before && !gap
      ? before
      : { target: o.target, since: at, ...(gap ? { gapSince: at } : {}) };
    return { marker, mode: "on", gap: gap || before?.gapSince !== undefined };
  }
  if (o.off) {
    return {
      marker: before && !before.off ? { ...before, off: at } : before,
      mode: "none",
      gap: false,
    };
  }
  if (before && !before.off) return { marker: before, mode: "missing", gap: false };
  return { marker: before, mode: "none", gap: false };
}
