import assert from "node:assert/strict";
import { gateEntries, type ServerCaps } from "./gate.ts";

const caps = (major: number, known: string[]): ServerCaps => ({
  major,
  knownSettings: new Set(known),
  libraries: new Set(),
  lz4: true,
});

Deno.test("gateEntries(): a setting meant for a newer major is dropped quietly below it", () => {
  const entries = [
    { name: "work_mem", value: "32MB" },
    { name: "io_method", value: "worker", since: 18 },
  ];
  const old = gateEntries(entries, caps(15, ["work_mem"]), "00-beyond.conf");
  assert.deepEqual(old.entries.map((e) => e.name), ["work_mem"]);
  assert.deepEqual(old.warnings, []);
  const now = gateEntries(entries, caps(18, ["work_mem", "io_method"]), "00-beyond.conf");
  assert.deepEqual(now.entries.map((e) => e.name), ["work_mem", "io_method"]);
});

Deno.test("gateEntries(): an unknown setting without `since` is dropped with one warning", () => {
  const r = gateEntries([{ name: "no_such_thing", value: 1 }], caps(18, []), "01-tuning.conf");
  assert.deepEqual(r.entries, []);
  assert.deepEqual(r.warnings, [
    "01-tuning.conf: skipping no_such_thing: PostgreSQL 18 does not know it",
  ]);
});

Deno.test("gateEntries(): extension settings (prefix.name) pass; their library gates them", () => {
  const r = gateEntries([{ name: "cron.database_name", value: "postgres" }], caps(15, []), "x");
  assert.equal(r.entries.length, 1);
});
