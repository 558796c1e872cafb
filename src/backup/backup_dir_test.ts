import assert from "node:assert/strict";
import { baseFileName, busyLine, leftovers } from "./backup_dir.ts";
import { newLabel, validLabel } from "./manifest.ts";

Deno.test("baseFileName() gives each backup its own base manifest, named by its label", () => {
  const a = newLabel(new Date("2026-11-30T10:00:00Z"));
  assert.ok(validLabel(a));
  assert.equal(baseFileName(a), "incremental-base.20261130T100000Z.manifest");
  assert.notEqual(baseFileName("nightly"), baseFileName("by-hand"));
  // A valid label never makes a path: no slash, never "." or "..".
  assert.ok(!validLabel("../x") && !validLabel("a/b") && !validLabel(".."));
});

Deno.test("leftovers() removes every base manifest (and the old fixed name), nothing else", () => {
  assert.deepEqual(
    leftovers([
      "backup.lock",
      "incremental-base.manifest",
      baseFileName("nightly"),
      baseFileName("20261130T100000Z"),
      "incremental-base.nightly.manifest.tmp",
      "incremental-base.x.manifest.tmp-0a1b2c3d",
      "notes.txt",
    ]),
    [
      "incremental-base.manifest",
      "incremental-base.nightly.manifest",
      "incremental-base.20261130T100000Z.manifest",
      "incremental-base.x.manifest.tmp-0a1b2c3d",
    ],
  );
  assert.deepEqual(leftovers([]), []);
});

Deno.test("busyLine() names the running backup, or says another one when it cannot", () => {
  assert.equal(
    busyLine(JSON.stringify({ label: "nightly", pid: 42, started: "2026-11-30T10:00:00.000Z" })),
    "backup nightly (pid 42, started 2026-11-30T10:00:00.000Z) is running; one backup at a time: wait for it to finish, then run this one again",
  );
  assert.match(busyLine(""), /^another backup is running; one backup at a time/);
  assert.match(busyLine("{"), /^another backup is running/);
});
