import assert from "node:assert/strict";
import { chainFiles, checkChain } from "./chain.ts";
import type { Lineage } from "../wal/lineage.ts";

const SEG = 16n << 20n;
const seg = (tli: number, n: number) =>
  `${tli.toString(16).toUpperCase().padStart(8, "0")}00000000${
    n.toString(16).toUpperCase().padStart(8, "0")
  }`;
const range = (tli: number, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => seg(tli, from + i));

const l1: Lineage = { timeline: 1, ancestors: [] };
const l2: Lineage = { timeline: 2, ancestors: [{ timeline: 1, end: 7n * SEG + 4096n }] };

Deno.test("checkChain(): continuous from the backup to the newest segment", () => {
  const r = checkChain({
    archived: new Set(range(1, 2, 10)),
    lineage: l1,
    start: { lsn: 2n * SEG + 40n, timeline: 1 },
  });
  assert.ok(r.ok);
  assert.equal(r.last, seg(1, 10));
  assert.equal(r.segments, 9);
});

Deno.test("checkChain(): a deleted middle segment is named, with the last reachable point", () => {
  const archived = new Set(range(1, 2, 10));
  archived.delete(seg(1, 7));
  const r = checkChain({ archived, lineage: l1, start: { lsn: 2n * SEG, timeline: 1 } });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.missing, seg(1, 7));
  assert.equal(r.lastReachable, seg(1, 6));
  assert.equal(r.beyond, 3);
  assert.match(
    r.problem,
    /000000010000000000000007 is missing from the archive \(3 later segment\(s\) are there: a hole\); the last reachable point is the end of 000000010000000000000006 \(0\/7000000\)/,
  );
});

Deno.test("checkChain(): an LSN target needs only the segments up to it", () => {
  const archived = new Set(range(1, 2, 5));
  assert.ok(
    checkChain({
      archived,
      lineage: l1,
      start: { lsn: 2n * SEG, timeline: 1 },
      until: 4n * SEG + 5n,
    }).ok,
  );
  const r = checkChain({
    archived,
    lineage: l1,
    start: { lsn: 2n * SEG, timeline: 1 },
    until: 7n * SEG,
  });
  assert.equal(r.ok, false);
});

Deno.test("checkChain(): across a timeline switch, the child's copy of the switch segment and its history", () => {
  const archived = new Set([
    ...range(1, 2, 7),
    `${seg(1, 7)}.partial`,
    ...range(2, 7, 9),
    "00000002.history",
  ]);
  archived.delete(seg(1, 7)); // the old timeline's switch segment is only there as .partial
  const r = checkChain({ archived, lineage: l2, start: { lsn: 2n * SEG, timeline: 1 } });
  assert.ok(r.ok, r.ok ? "" : r.problem);
  assert.equal(r.last, seg(2, 9));
  archived.delete("00000002.history");
  const h = checkChain({ archived, lineage: l2, start: { lsn: 2n * SEG, timeline: 1 } });
  assert.equal(h.ok, false);
  assert.match((h as { problem: string }).problem, /00000002\.history is missing/);
});

Deno.test("checkChain(): a backup after its timeline branched off is not on the lineage", () => {
  const r = checkChain({
    archived: new Set(range(1, 2, 12)),
    lineage: l2,
    start: { lsn: 8n * SEG, timeline: 1 },
  });
  assert.equal(r.ok, false);
  assert.match((r as { problem: string }).problem, /after timeline 2 branched off/);
});

Deno.test("chainFiles(): the history files recovery switches through, then every segment in order", () => {
  const lineage = {
    timeline: 2,
    ancestors: [{ timeline: 1, end: 4n * 16n * 1024n * 1024n + 100n }],
  };
  const i = {
    archived: new Set<string>(),
    lineage,
    start: { lsn: 2n * 16n * 1024n * 1024n, timeline: 1 },
  };
  assert.deepEqual(chainFiles(i, "000000020000000000000005"), [
    "00000002.history",
    "000000010000000000000002",
    "000000010000000000000003",
    "000000020000000000000004",
    "000000020000000000000005",
  ]);
});
