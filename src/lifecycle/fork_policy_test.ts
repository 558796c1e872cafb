import assert from "node:assert/strict";
import { archiveRefusal, decideFork, type ForkInput, parseRecord } from "./fork_policy.ts";

const now = new Date("2025-01-02T03:04:05Z");
const base: ForkInput = {
  recorded: undefined,
  dataExisted: true,
  volumeId: undefined,
  forkOf: undefined,
  parentTarget: undefined,
  now,
};

Deno.test("fork: a first boot records the volume id and is never a fork", () => {
  const d = decideFork({ ...base, dataExisted: false, volumeId: "vol-a" });
  assert.equal(d.fresh, false);
  assert.deepEqual(d.record, { volumeId: "vol-a" });
  const f = decideFork({ ...base, dataExisted: false, forkOf: "vol-a" });
  assert.equal(f.fresh, false);
  assert.match(f.warnings[0]!, /holds no cluster/);
});

Deno.test("fork: the same volume id again is not a fork", () => {
  const d = decideFork({ ...base, recorded: { volumeId: "vol-a" }, volumeId: "vol-a" });
  assert.equal(d.fresh, false);
  assert.deepEqual(d.record, { volumeId: "vol-a" });
});

Deno.test("fork: a changed volume id is a fork of the recorded one", () => {
  const d = decideFork({
    ...base,
    recorded: { volumeId: "vol-a" },
    volumeId: "vol-b",
    parentTarget: "s3://bucket/a/",
  });
  assert.equal(d.fresh, true);
  assert.deepEqual(d.record, {
    volumeId: "vol-b",
    forkOf: "vol-a",
    forkedAt: now.toISOString(),
    parentTargets: ["s3://bucket/a"],
    dropSlots: true,
  });
  // Its next boot is not a fork again.
  const again = decideFork({ ...base, recorded: d.record, volumeId: "vol-b" });
  assert.equal(again.fresh, false);
  assert.equal(again.record.forkOf, "vol-a");
  assert.deepEqual(again.record.parentTargets, ["s3://bucket/a"]);
});

Deno.test("fork: BEYOND_PG_FORK_OF alone (no volume ids) marks the first boot only", () => {
  const d = decideFork({ ...base, forkOf: "vol-a", parentTarget: "s3://b/p" });
  assert.equal(d.fresh, true);
  assert.equal(d.record.forkOf, "vol-a");
  assert.equal(d.record.volumeId, undefined);
  assert.equal(decideFork({ ...base, recorded: d.record, forkOf: "vol-a" }).fresh, false);
  // A fork of that fork (another parent named) is fresh again and remembers both targets.
  const g = decideFork({
    ...base,
    recorded: { ...d.record, dropSlots: false },
    forkOf: "vol-b",
    parentTarget: "s3://b/q",
  });
  assert.equal(g.fresh, true);
  assert.deepEqual(g.record.parentTargets, ["s3://b/p", "s3://b/q"]);
});

Deno.test("fork: the fork's own volume id equal to its parent's is refused with the fix", () => {
  const d = decideFork({ ...base, volumeId: "vol-a", forkOf: "vol-a" });
  assert.match(d.problem!, /set BEYOND_PG_VOLUME_ID to the fork's/);
});

Deno.test("fork: FORK_OF disagreeing with the recorded id: the metadata's parent wins, with a warning", () => {
  const d = decideFork({
    ...base,
    recorded: { volumeId: "vol-x" },
    volumeId: "vol-b",
    forkOf: "vol-a",
  });
  assert.equal(d.fresh, true);
  assert.equal(d.record.forkOf, "vol-a");
  assert.match(d.warnings[0]!, /last booted as volume vol-x/);
});

Deno.test("fork: archiving to a parent's prefix is refused; another prefix is allowed", () => {
  const record = { forkOf: "vol-a", parentTargets: ["s3://bucket/a"] };
  assert.match(archiveRefusal(record, "s3://bucket/a/")!, /set a new prefix/);
  assert.equal(archiveRefusal(record, "s3://bucket/a/fork-1"), undefined);
  assert.equal(archiveRefusal(record, undefined), undefined);
  assert.equal(archiveRefusal({}, "s3://bucket/a"), undefined);
});

Deno.test("fork: the record postgres could rewrite keeps only well-formed fields", () => {
  assert.equal(parseRecord("not json"), undefined);
  assert.equal(parseRecord("[1]"), undefined);
  assert.deepEqual(
    parseRecord(
      JSON.stringify({
        volumeId: "v",
        forkOf: 7,
        parentTargets: ["s3://b/p", 3, null],
        dropSlots: "yes",
        extra: true,
      }),
    ),
    { volumeId: "v", parentTargets: ["s3://b/p"] },
  );
});
