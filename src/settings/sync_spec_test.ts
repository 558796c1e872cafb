import assert from "node:assert/strict";
import { formatSyncSpec, parseSyncLevel, parseSyncSpec, standbyNameFrom } from "./sync_spec.ts";

Deno.test("parseSyncSpec() reads PostgreSQL's grammar: ANY k, FIRST k, k (…), plain names", () => {
  assert.deepEqual(parseSyncSpec("ANY 1 (r1, r2)"), { method: "ANY", k: 1, names: ["r1", "r2"] });
  assert.deepEqual(parseSyncSpec("first 2 (a,b,c)"), {
    method: "FIRST",
    k: 2,
    names: ["a", "b", "c"],
  });
  assert.deepEqual(parseSyncSpec("1 (a)"), { method: "FIRST", k: 1, names: ["a"] });
  assert.deepEqual(parseSyncSpec("a, b"), { method: "FIRST", k: 1, names: ["a", "b"] });
  assert.deepEqual(parseSyncSpec(""), { method: "ANY", k: 0, names: [] });
  assert.equal(formatSyncSpec(parseSyncSpec("any 1 (r1,r2)") as never), "ANY 1 (r1, r2)");
  assert.equal(formatSyncSpec(parseSyncSpec("") as never), "");
});

Deno.test("parseSyncSpec() refuses what would never be satisfied or is not a slot name", () => {
  assert.match(parseSyncSpec("ANY 3 (a, b)") as string, /waits for 3 of 2 standbys/);
  assert.match(parseSyncSpec("ANY (a)") as string, /ANY without a number/);
  assert.match(parseSyncSpec("ANY 1 (a, a)") as string, /names a standby twice/);
  assert.match(parseSyncSpec("ANY 1 (a b)") as string, /not a standby name/);
  assert.match(parseSyncSpec("*") as string, /not a standby name/);
  assert.deepEqual(parseSyncLevel(" ON "), { level: "on" });
  assert.ok("problem" in parseSyncLevel("off"));
});

Deno.test("standbyNameFrom() turns a host name into a slot name", () => {
  assert.equal(standbyNameFrom("DB-1.example.com"), "db_1_example_com");
  assert.equal(standbyNameFrom(""), "beyond_pg");
});
