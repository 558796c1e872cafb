import assert from "node:assert/strict";
import { nextMarker } from "./marker.ts";

const now = new Date("2026-11-30T12:00:00Z");

Deno.test("nextMarker(): a target is recorded; the same target again changes nothing", () => {
  const first = nextMarker(undefined, { target: "s3://b/p", off: false, now });
  assert.equal(first.mode, "on");
  assert.equal(first.gap, false);
  const again = nextMarker(first.marker, { target: "s3://b/p", off: false, now: new Date() });
  assert.deepEqual(again.marker, first.marker);
});

Deno.test("nextMarker(): an archived volume booted without a target is 'missing' (WAL kept)", () => {
  const before = { target: "s3://b/p", since: now.toISOString() };
  assert.equal(nextMarker(before, { target: undefined, off: false, now }).mode, "missing");
  assert.equal(nextMarker(undefined, { target: undefined, off: false, now }).mode, "none");
});

Deno.test("nextMarker(): off on purpose is recorded; a target after it starts with a gap", () => {
  const before = { target: "s3://b/p", since: now.toISOString() };
  const off = nextMarker(before, { target: undefined, off: true, now });
  assert.equal(off.mode, "none");
  assert.equal(off.marker?.off, now.toISOString());
  const back = nextMarker(off.marker, { target: "s3://b/p", off: false, now });
  assert.equal(back.gap, true);
  assert.equal(back.marker?.gapSince, now.toISOString());
  const moved = nextMarker(before, { target: "s3://b/other", off: false, now });
  assert.equal(moved.gap, true);
});
