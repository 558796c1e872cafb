/**
 * PURE: timelines and who owns a prefix's lineage.
 *
 * A prefix holds one cluster's WAL (one system identifier), but every restore and every
 * promotion makes a new timeline, and a restore booted to test a backup is a branch, not the
 * primary. The owner record (beyond-pg.json) names the primary's timeline: WAL is archived when
 * it belongs to that lineage — the primary's timeline, or its ancestors up to where they ended.
 * A branch (a newer timeline the record does not name) is not archived unless this cluster was
 * told it is the new primary (`restore --promote-as-primary`, `BEYOND_PG_ARCHIVE_PROMOTE`), and
 * an old primary that another cluster took over from is fenced: it keeps its WAL.
 */
import { formatLsn, parseLsn, parseSegment, SEGMENT_BYTES, walKind } from "./names.ts";

/** One line of a history file: `timeline` ended (switched to a child) at `end`. */
export interface HistoryEntry {
  timeline: number;
  end: bigint;
}

/** A timeline and its ancestors (oldest first), as its history file says. */
export interface Lineage {
  timeline: number;
  ancestors: HistoryEntry[];
}

/** PURE: the entries of a timeline history file (comments and blank lines skipped). */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const [tli, lsn] = line.split(/\s+/);
    const end = parseLsn(lsn ?? "");
    if (!Number.isInteger(Number(tli)) || end === undefined) continue;
    out.push({ timeline: Number(tli), end });
  }
  return out;
}

/**
 * Has a standby left its primary's history? Its latest checkpoint is at `checkpoint` on
 * `timeline`; the primary is on `upstreamTimeline`, whose history file lists where each
 * ancestor ended. Past that point (or not an ancestor at all) the standby holds WAL the primary
 * never had: postgres refuses to follow ("requested timeline N is not a child of this server's
 * history") and only pg_rewind brings it back.
 */
export function leftHistory(
  checkpoint: bigint,
  timeline: number,
  upstreamTimeline: number,
  history: readonly HistoryEntry[],
): boolean {
  if (timeline === upstreamTimeline) return false;
  if (timeline > upstreamTimeline) return true;
  const ancestor = history.find((e) => e.timeline === timeline);
  return !ancestor || checkpoint >= ancestor.end;
}

export function historyName(timeline: number): string {
  return `${timeline.toString(16).toUpperCase().padStart(8, "0")}.history`;
}

/** Is `timeline` on this lineage (the timeline itself or an ancestor)? */
export function onPath(l: Lineage, timeline: number): boolean {
  return timeline === l.timeline || l.ancestors.some((a) => a.timeline === timeline);
}

/** Where `timeline` ends on this lineage (undefined: it is the lineage's own, open-ended). */
export function endOf(l: Lineage, timeline: number): bigint | undefined {
  return l.ancestors.find((a) => a.timeline === timeline)?.end;
}

/** Where `timeline` begins on this lineage (the end of its parent; 0 for the first). */
export function beginOf(l: Lineage, timeline: number): bigint {
  const i = timeline === l.timeline
    ? l.ancestors.length
    : l.ancestors.findIndex((a) => a.timeline === timeline);
  return i <= 0 ? 0n : l.ancestors[i - 1]!.end;
}

/** The timeline whose file recovery reads for segment `n` (the newest that has begun). */
export function timelineForSegment(l: Lineage, n: bigint, segmentBytes = SEGMENT_BYTES): number {
  const all = [...l.ancestors.map((a) => a.timeline), l.timeline];
  for (let i = all.length - 1; i >= 0; i--) {
    if (beginOf(l, all[i]!) / BigInt(segmentBytes) <= n) return all[i]!;
  }
  return all[0]!;
}

export type Decision =
  | { action: "archive" }
  /** Not this lineage's: answered as done, not stored (a branch's WAL). */
  | { action: "skip"; reason: string }
  /** Kept by postgres (a fenced old primary), with the reason. */
  | { action: "refuse"; reason: string }
  /** This cluster is the new primary: move the owner record to `timeline` first. */
  | { action: "promote"; timeline: number };

/**
 * What to do with WAL file `name` when the prefix's primary is `owner`. `promote`: this
 * cluster was told it is the new primary (a newer timeline that descends from the owner's
 * takes the lineage over). `descends(t)` says whether timeline t's history contains the
 * owner's timeline (the history file of t, when this cluster made it).
 */
export function decide(
  name: string,
  owner: Lineage,
  o: { promote: boolean; descends: (timeline: number) => boolean },
): Decision {
  const kind = walKind(name);
  const timeline = parseInt(name.slice(0, 8), 16);
  if (kind === "history" || timeline > owner.timeline) {
    if (onPath(owner, timeline)) return { action: "archive" };
    if (timeline > owner.timeline) {
      if (o.promote && o.descends(timeline)) return { action: "promote", timeline };
      return {
        action: "skip",
        reason:
          `timeline ${timeline} is a branch of this prefix (its primary is on timeline ${owner.timeline})`,
      };
    }
    return { action: "archive" }; // an older timeline's history: harmless, already ancestors
  }
  if (timeline === owner.timeline) return { action: "archive" };
  // An ancestor's segment: part of the lineage up to where that timeline ended.
  const end = endOf(owner, timeline);
  if (end === undefined) {
    return {
      action: "refuse",
      reason:
        `timeline ${timeline} is not in the lineage of this prefix's primary (timeline ${owner.timeline})`,
    };
  }
  // Only what that timeline wrote before it ended: a segment reaching past the switch holds
  // WAL the new primary does not have. (The .partial of the switch segment is the new
  // primary's copy up to the switch: it belongs.)
  const id = parseSegment(name);
  if (id && (id.number + 1n) * BigInt(SEGMENT_BYTES) > end && kind !== "partial") {
    return {
      action: "refuse",
      reason: `timeline ${timeline} ended at ${
        formatLsn(end)
      } when timeline ${owner.timeline} took over; this cluster is a former primary (fenced): its WAL stays here`,
    };
  }
  return { action: "archive" };
}
