import assert from "node:assert/strict";
import { planGap } from "./gap.ts";
import { parseSinkListing, type SinkListing } from "./sink_api.ts";

const SEG = 16 << 20;
const local = { sysid: "42", timeline: 1, end: 5n * BigInt(SEG) + 1000n };
const seg = (n: number, bytes = SEG, partial = false, tli = 1) => ({
  name: `${tli.toString(16).padStart(8, "0").toUpperCase()}00000000${
    n.toString(16).padStart(8, "0").toUpperCase()
  }`,
  bytes,
  partial,
});
const sink = (name: string, segments: ReturnType<typeof seg>[], sysid = "42"): SinkListing => ({
  sink: name,
  systemIdentifier: sysid,
  segments,
  end: null,
});

Deno.test("planGap(): the sink reaching furthest past the volume's end, from its segment on", () => {
  const plan = planGap(local, [
    sink("s1", [seg(4), seg(5), seg(6, 5000, true)]),
    sink("s2", [seg(5), seg(6), seg(7, 100, true)]),
  ], SEG);
  assert.equal(plan.kind, "fetch");
  if (plan.kind !== "fetch") return;
  assert.equal(plan.sink, "s2");
  assert.deepEqual(plan.segments.map((s) => s.name), [seg(5).name, seg(6).name, seg(7).name]);
  assert.equal(plan.end, 7n * BigInt(SEG) + 100n);
});

Deno.test("planGap(): no gap, and the sinks it refuses, one line each", () => {
  const none = planGap(local, [sink("s1", [seg(5, 1000, true)])], SEG);
  assert.equal(none.kind, "none");
  const plan = planGap(local, [
    sink("other", [seg(5), seg(6, 10, true)], "7"),
    sink("tl2", [seg(5, SEG, false, 2), seg(6, 10, true, 2)]),
    sink("late", [seg(6), seg(7, 10, true)]),
    sink("hole", [seg(5, 2000, true)]),
  ], SEG);
  assert.equal(plan.kind, "fetch");
  assert.equal(plan.kind === "fetch" && plan.sink, "hole");
  assert.match(
    plan.refused[0]!,
    /sink other: it holds another cluster's WAL \(system identifier 7/,
  );
  assert.match(plan.refused[1]!, /sink tl2: it is on timeline 2, this volume on 1/);
  assert.match(plan.refused[2]!, /sink late: it starts at 000000010000000000000006, after/);
});

Deno.test("planGap(): a hole in a sink's segments ends what it can give", () => {
  const plan = planGap(local, [sink("s1", [seg(5), seg(7)])], SEG);
  assert.equal(plan.kind === "fetch" && plan.segments.length, 1);
});

Deno.test("parseSinkListing() takes only well-formed answers", () => {
  assert.equal(
    typeof parseSinkListing({ systemIdentifier: "1", segments: [], end: null }, SEG),
    "object",
  );
  assert.match(parseSinkListing([], SEG) as string, /not a JSON object/);
  assert.match(
    parseSinkListing({ systemIdentifier: "x", segments: [], end: null }, SEG) as string,
    /not a decimal/,
  );
  assert.match(
    parseSinkListing(
      {
        systemIdentifier: null,
        segments: [{ name: "../etc", bytes: 1, partial: true }],
        end: null,
      },
      SEG,
    ) as string,
    /malformed/,
  );
  assert.match(
    parseSinkListing(
      {
        systemIdentifier: null,
        segments: [{ name: seg(1).name, bytes: SEG + 1, partial: false }],
        end: null,
      },
      SEG,
    ) as string,
    /malformed/,
  );
});
