import assert from "node:assert/strict";
import { rpoStep } from "./rpo.ts";

const T = 60_000;

Deno.test("rpoStep() switches a segment that has held a commit for archive_timeout", () => {
  let s = rpoStep(
    rpoStep(undefined, { nextXid: 100n, segment: "0" }, 0, T).state,
    {
      nextXid: 100n,
      segment: "A",
    },
    0,
    T,
  ).state;
  let r = rpoStep(s, { nextXid: 101n, segment: "A" }, 30_000, T); // a commit
  assert.equal(r.switchNow, false, "not yet");
  s = r.state;
  r = rpoStep(s, { nextXid: 101n, segment: "A" }, 60_000, T);
  assert.equal(r.switchNow, true);
});

Deno.test("rpoStep() switches the segment it first finds (commits from before it started), then never an idle database", () => {
  let s = rpoStep(undefined, { nextXid: 7n, segment: "Z" }, 0, T).state;
  assert.equal(rpoStep(s, { nextXid: 7n, segment: "Z" }, T, T).switchNow, true);
  s = rpoStep(s, { nextXid: 7n, segment: "A" }, T + 1, T).state;
  for (let t = 30_000; t < 600_000; t += 30_000) {
    const r = rpoStep(s, { nextXid: 7n, segment: "A" }, t, T);
    assert.equal(r.switchNow, false);
    s = r.state;
  }
});

Deno.test("rpoStep() counts a commit made just before a new segment began as the new segment's", () => {
  let s = rpoStep(
    rpoStep(undefined, { nextXid: 7n, segment: "0" }, 0, T).state,
    {
      nextXid: 7n,
      segment: "A",
    },
    0,
    T,
  ).state;
  // Between two looks: a commit (xid 7 → 8) and a switch to B.
  s = rpoStep(s, { nextXid: 8n, segment: "B" }, 30_000, T).state;
  assert.equal(rpoStep(s, { nextXid: 8n, segment: "B" }, 90_000, T).switchNow, true);
  // After our switch to C: quiet, no more switches.
  s = rpoStep(s, { nextXid: 8n, segment: "C" }, 120_000, T).state;
  assert.equal(rpoStep(s, { nextXid: 8n, segment: "C" }, 300_000, T).switchNow, false);
});
