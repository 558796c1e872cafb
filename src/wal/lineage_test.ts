import assert from "node:assert/strict";
import { decide, leftHistory, type Lineage, parseHistory, timelineForSegment } from "./lineage.ts";

const SEG = 16n << 20n;
const seg = (tli: number, n: number) =>
  `${tli.toString(16).toUpperCase().padStart(8, "0")}00000000${
    n.toString(16).toUpperCase().padStart(8, "0")
  }`;

/** Timeline 3, whose history is 1 → (ended at segment 5) 2 → (ended at segment 9) 3. */
const l3: Lineage = {
  timeline: 3,
  ancestors: [{ timeline: 1, end: 5n * SEG + 100n }, { timeline: 2, end: 9n * SEG }],
};
const never = { promote: false, descends: () => false };

Deno.test("parseHistory() reads timeline and switch point, skipping comments", () => {
  assert.deepEqual(parseHistory("# c\n1\t0/5000064\tno recovery target\n\n2\t0/9000000\tx\n"), [
    { timeline: 1, end: 0x5000064n },
    { timeline: 2, end: 0x9000000n },
  ]);
});

Deno.test("timelineForSegment(): the newest timeline that has begun by that segment", () => {
  assert.equal(timelineForSegment(l3, 4n), 1);
  assert.equal(timelineForSegment(l3, 5n), 2); // the switch segment: the child's copy
  assert.equal(timelineForSegment(l3, 8n), 2);
  assert.equal(timelineForSegment(l3, 9n), 3);
});

Deno.test("decide(): the owner's lineage is archived, up to where each ancestor ended", () => {
  assert.deepEqual(decide(seg(3, 12), l3, never), { action: "archive" });
  assert.deepEqual(decide(seg(2, 8), l3, never), { action: "archive" });
  assert.deepEqual(decide("00000003.history", l3, never), { action: "archive" });
  assert.deepEqual(decide(`${seg(2, 9)}.partial`, l3, never), { action: "archive" });
  // An old primary on timeline 2 writing past the switch: fenced, its WAL is kept.
  const past = decide(seg(2, 9), l3, never);
  assert.equal(past.action, "refuse");
  assert.match((past as { reason: string }).reason, /fenced/);
  // A timeline that is not an ancestor at all.
  assert.equal(
    decide(seg(4, 3), { timeline: 5, ancestors: [{ timeline: 1, end: SEG }] }, never).action,
    "refuse",
  );
});

Deno.test("decide(): a newer timeline is a branch unless this cluster was told it is the primary", () => {
  const branch = decide(seg(4, 12), l3, never);
  assert.equal(branch.action, "skip");
  assert.match((branch as { reason: string }).reason, /branch/);
  assert.equal(decide("00000004.history", l3, never).action, "skip");
  assert.deepEqual(
    decide("00000004.history", l3, { promote: true, descends: (t) => t === 4 }),
    { action: "promote", timeline: 4 },
  );
  // Told to promote, but this timeline does not descend from the owner's: still a branch.
  assert.equal(decide(seg(4, 12), l3, { promote: true, descends: () => false }).action, "skip");
});

Deno.test("leftHistory(): a standby past its primary's fork point must be rewound", () => {
  const h = parseHistory("1\t0/500CD18\tno recovery target specified\n");
  assert.equal(leftHistory(0x6000028n, 1, 2, h), true, "checkpoint after the fork");
  assert.equal(leftHistory(0x4000028n, 1, 2, h), false, "before it: it can follow");
  assert.equal(leftHistory(0x500cd18n, 1, 2, h), true, "at it: it belongs to timeline 2");
  assert.equal(leftHistory(0x9000000n, 2, 2, h), false, "same timeline");
  assert.equal(leftHistory(0x1000000n, 3, 2, h), true, "ahead of the primary");
  assert.equal(leftHistory(0x1000000n, 1, 3, [{ timeline: 2, end: 0x7000000n }]), true);
});
