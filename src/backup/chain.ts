/**
 * PURE: is the archived WAL continuous from a base backup's start to where a restore must go?
 * Recovery reads, for each segment, the file of the newest timeline of its lineage that has
 * begun by then (lineage.ts timelineForSegment); every one of them must be there, and the
 * history file of every timeline it switches to. A hole would otherwise end recovery early and
 * look like success. Used before a restore starts (and by `verify`).
 */
import { formatLsn, parseSegment, segmentName, walKind } from "../wal/names.ts";
import { endOf, historyName, type Lineage, onPath, timelineForSegment } from "../wal/lineage.ts";
import { SEGMENT_BYTES } from "../wal/names.ts";

export interface ChainInput {
  /** Every file name in the archive's wal/ (segments, .partial, .history, .backup). */
  archived: ReadonlySet<string>;
  /** The timeline the restore follows, and its ancestors. */
  lineage: Lineage;
  /** The base backup's start: its redo LSN and timeline. */
  start: { lsn: bigint; timeline: number };
  /** Recovery must reach this LSN; undefined: as far as the archive goes on this lineage. */
  until?: bigint;
  segmentBytes?: number;
}

export type ChainResult =
  | {
    ok: true;
    /** The last segment recovery will read, and the LSN where it ends. */
    last: string;
    end: bigint;
    segments: number;
  }
  | {
    ok: false;
    /** One line: what is missing, and the last point reachable before it. */
    problem: string;
    missing: string;
    /** The last segment that is there before the hole ("" when none). */
    lastReachable: string;
    /** Segments of this lineage beyond the hole (a hole, not just the end of the archive). */
    beyond: number;
  };

function need(l: Lineage, n: bigint, seg: number): string {
  return segmentName({ timeline: timelineForSegment(l, n, seg), number: n }, seg);
}

/** The newest segment recovery on this lineage could read, or undefined. */
export function newestOnLineage(
  archived: ReadonlySet<string>,
  l: Lineage,
  seg = SEGMENT_BYTES,
): bigint | undefined {
  let newest: bigint | undefined;
  for (const name of archived) {
    if (walKind(name) !== "segment") continue;
    const id = parseSegment(name, seg)!;
    if (!onPath(l, id.timeline) || timelineForSegment(l, id.number, seg) !== id.timeline) continue;
    if (newest === undefined || id.number > newest) newest = id.number;
  }
  return newest;
}

export function checkChain(i: ChainInput): ChainResult {
  const seg = i.segmentBytes ?? SEGMENT_BYTES;
  const l = i.lineage;
  const fail = (problem: string, missing: string, lastReachable = "", beyond = 0): ChainResult => ({
    ok: false,
    problem,
    missing,
    lastReachable,
    beyond,
  });
  if (!onPath(l, i.start.timeline)) {
    return fail(
      `the base backup is on timeline ${i.start.timeline}, which is not in timeline ${l.timeline}'s history`,
      "",
    );
  }
  const ended = endOf(l, i.start.timeline);
  if (ended !== undefined && i.start.lsn >= ended) {
    return fail(
      `the base backup starts at ${
        formatLsn(i.start.lsn)
      } on timeline ${i.start.timeline}, after timeline ${l.timeline} branched off it (${
        formatLsn(ended)
      })`,
      "",
    );
  }
  // The history of every timeline recovery switches to.
  for (const t of [...l.ancestors.map((a) => a.timeline), l.timeline]) {
    if (t <= i.start.timeline || t === 1) continue;
    const h = historyName(t);
    if (!i.archived.has(h)) {
      return fail(`${h} is missing: recovery cannot switch to timeline ${t}`, h);
    }
  }
  const first = i.start.lsn / BigInt(seg);
  const newest = newestOnLineage(i.archived, l, seg);
  const last = i.until !== undefined ? i.until / BigInt(seg) : newest ?? first;
  for (let n = first; n <= last; n++) {
    const name = need(l, n, seg);
    if (i.archived.has(name)) continue;
    const lastReachable = n > first ? need(l, n - 1n, seg) : "";
    const beyond = newest !== undefined && newest > n ? Number(newest - n) : 0;
    const reach = lastReachable
      ? `the last reachable point is the end of ${lastReachable} (${formatLsn(n * BigInt(seg))})`
      : "nothing after the base backup's start is reachable";
    return fail(
      `${name} is missing from the archive${
        beyond ? ` (${beyond} later segment(s) are there: a hole)` : ""
      }; ${reach}`,
      name,
      lastReachable,
      beyond,
    );
  }
  return {
    ok: true,
    last: need(l, last, seg),
    end: (last + 1n) * BigInt(seg),
    segments: Number(last - first + 1n),
  };
}

/**
 * The files recovery reads along a continuous chain (checkChain ok): the history file of every
 * timeline it switches to, then each segment from the backup's start to `last`, in order.
 * `verify` reads each of them.
 */
export function chainFiles(i: ChainInput, last: string): string[] {
  const seg = i.segmentBytes ?? SEGMENT_BYTES;
  const l = i.lineage;
  const out: string[] = [];
  for (const t of [...l.ancestors.map((a) => a.timeline), l.timeline]) {
    if (t > i.start.timeline && t !== 1) out.push(historyName(t));
  }
  const end = parseSegment(last, seg)!.number;
  for (let n = i.start.lsn / BigInt(seg); n <= end; n++) out.push(need(l, n, seg));
  return out;
}
