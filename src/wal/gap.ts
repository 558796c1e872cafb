/**
 * PURE: the gap fetch's plan (boot step 4a). The volume's WAL ends at `local.end` on
 * `local.timeline`; each reachable sink lists what it has. A sink is usable when it holds this
 * cluster's WAL (system identifier), on this timeline, continuously from the segment holding
 * `local.end` to somewhere past it; of those, the one that reaches furthest is fetched. Sinks
 * that disagree (another cluster, another timeline, a hole) are refused with one line each;
 * the bytes themselves are checked by the caller (the local bytes must be a prefix of the
 * sink's, every page header valid) before anything is written.
 */
import { formatLsn, parseSegment, segmentName } from "./names.ts";
import type { SinkListing } from "./sink_api.ts";

export interface LocalWal {
  sysid: string;
  timeline: number;
  /** Where the volume's valid WAL ends. */
  end: bigint;
}

export interface GapSegment {
  name: string;
  /** Valid bytes the sink has of it. */
  bytes: number;
  partial: boolean;
}

export type GapPlan =
  | { kind: "none"; reason: string; refused: string[] }
  | {
    kind: "fetch";
    sink: string;
    /** From the segment holding local.end on, in order. */
    segments: GapSegment[];
    /** Where WAL will end once they are placed. */
    end: bigint;
    refused: string[];
  };

/** Where a sink's continuous WAL from `fromSegment` on ends, or why it cannot be used. */
export function sinkReach(
  l: SinkListing,
  local: LocalWal,
  segmentBytes: number,
): { end: bigint; segments: GapSegment[] } | string {
  if (l.systemIdentifier !== null && l.systemIdentifier !== local.sysid) {
    return `it holds another cluster's WAL (system identifier ${l.systemIdentifier}, this volume's is ${local.sysid})`;
  }
  const size = BigInt(segmentBytes);
  const first = local.end / size;
  const mine = l.segments
    .map((s) => ({ ...s, id: parseSegment(s.name, segmentBytes)! }))
    .filter((s) => s.id.number >= first);
  const other = mine.filter((s) => s.id.timeline !== local.timeline);
  const same = mine.filter((s) => s.id.timeline === local.timeline)
    .sort((a, b) => (a.id.number < b.id.number ? -1 : a.id.number > b.id.number ? 1 : 0));
  if (!same.length) {
    if (other.length) {
      return `it is on timeline ${
        other[0]!.id.timeline
      }, this volume on ${local.timeline} (a diverged history)`;
    }
    return `it has nothing from ${
      segmentName({ timeline: local.timeline, number: first }, segmentBytes)
    } on`;
  }
  if (same[0]!.id.number !== first) {
    return `it starts at ${same[0]!.name}, after ${
      segmentName({ timeline: local.timeline, number: first }, segmentBytes)
    } where this volume's WAL ends (it no longer has the segment in between)`;
  }
  const segments: GapSegment[] = [];
  let expect = first;
  for (const s of same) {
    if (s.id.number !== expect) break; // a hole: what is after it cannot be replayed
    segments.push({ name: s.name, bytes: s.bytes, partial: s.partial });
    expect++;
    if (s.partial || s.bytes < segmentBytes) break;
  }
  const last = segments.at(-1)!;
  const end = BigInt(segments.length - 1) * size + first * size + BigInt(last.bytes);
  return { end, segments };
}

export function planGap(
  local: LocalWal,
  sinks: readonly SinkListing[],
  segmentBytes: number,
): GapPlan {
  const refused: string[] = [];
  let best: { sink: string; end: bigint; segments: GapSegment[] } | undefined;
  for (const l of sinks) {
    const r = sinkReach(l, local, segmentBytes);
    if (typeof r === "string") {
      refused.push(`sink ${l.sink}: ${r}`);
      continue;
    }
    if (!best || r.end > best.end) best = { sink: l.sink, ...r };
  }
  if (!best || best.end <= local.end) {
    return {
      kind: "none",
      reason: best
        ? `no gap: the volume's WAL ends at ${formatLsn(local.end)}, the sinks have no more`
        : "no usable sink",
      refused,
    };
  }
  return { kind: "fetch", sink: best.sink, segments: best.segments, end: best.end, refused };
}
