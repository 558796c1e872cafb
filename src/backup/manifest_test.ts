import assert from "node:assert/strict";
import {
  backupChain,
  type BackupManifest,
  chooseBackup,
  chooseParent,
  newLabel,
  parseDuration,
  parseTargetTime,
  pruneSelection,
  validLabel,
} from "./manifest.ts";
import { recoveryConf } from "./restore.ts";
import { parseArgs } from "../cli/args.ts";

function backup(label: string, stop: string, stopLsn: string): BackupManifest {
  return {
    format: 1,
    label,
    system_identifier: "1",
    major: 15,
    pg_version: "15.20",
    timeline: 1,
    start_lsn: stopLsn,
    stop_lsn: stopLsn,
    start_wal: "000000010000000000000001",
    start_time: stop,
    stop_time: stop,
    bytes: 1,
    stored_bytes: 1,
    sha256: "",
    codec: "zstd",
    object: "base.tar.zst",
    parts: 1,
    duration_ms: 1,
  };
}

const list = [
  backup("a", "2026-11-20T00:00:00.000Z", "0/1000000"),
  backup("b", "2026-11-21T00:00:00.000Z", "0/5000000"),
  backup("c", "2026-11-22T00:00:00.000Z", "1/0"),
];

Deno.test("chooseBackup() takes the newest backup consistent before the target", () => {
  const at = (s: string) => ({ kind: "time" as const, at: new Date(s), text: s });
  assert.equal((chooseBackup(list, at("2026-11-21T12:00:00Z")) as BackupManifest).label, "b");
  assert.equal((chooseBackup(list, at("2026-11-21T00:00:00Z")) as BackupManifest).label, "b");
  assert.equal((chooseBackup(list, { kind: "lsn", lsn: 0x4ffffffn }) as BackupManifest).label, "a");
  assert.equal((chooseBackup(list, { kind: "latest" }) as BackupManifest).label, "c");
  assert.match(
    chooseBackup(list, at("2026-11-19T00:00:00Z")) as string,
    /before the oldest base backup \(a, consistent at 2026-11-20T00:00:00.000Z\); choose a later --to-time/,
  );
  assert.match(chooseBackup([], { kind: "latest" }) as string, /no base backups/);
});

Deno.test("pruneSelection() keeps the newest always, then by count or age", () => {
  const now = new Date("2026-11-23T00:00:00Z");
  assert.deepEqual(pruneSelection(list, { keep: 2 }, now).map((b) => b.label), ["a"]);
  assert.deepEqual(pruneSelection(list, { keep: 5 }, now).map((b) => b.label), []);
  assert.deepEqual(
    pruneSelection(list, { olderThanMs: 36 * 3600_000 }, now).map((b) => b.label),
    ["b", "a"],
  );
  // Everything is old: the newest still stays.
  assert.deepEqual(pruneSelection(list, { olderThanMs: 1 }, now).map((b) => b.label), ["b", "a"]);
  assert.deepEqual(pruneSelection(list, {}, now), []);
});

Deno.test("parseTargetTime() keeps microseconds for postgres and reads zones; no zone is UTC", () => {
  const t = parseTargetTime("2026-11-23 15:30:00.123456+01")!;
  assert.equal(t.text, "2026-11-23 15:30:00.123456+01:00");
  assert.equal(t.at.toISOString(), "2026-11-23T14:30:00.123Z");
  assert.equal(parseTargetTime("2026-11-23T15:30:00Z")!.text, "2026-11-23 15:30:00+00:00");
  assert.equal(parseTargetTime("2026-11-23 15:30")!.at.toISOString(), "2026-11-23T15:30:00.000Z");
  assert.equal(parseTargetTime("yesterday"), undefined);
  assert.equal(parseTargetTime("2026-13-45 99:00:00"), undefined);
});

Deno.test("labels, durations and argument parsing", () => {
  assert.equal(newLabel(new Date("2026-11-23T15:30:01.500Z")), "20261123T153001Z");
  assert.ok(validLabel("nightly-2026.11.23"));
  assert.ok(!validLabel("../x") && !validLabel("") && !validLabel("a b"));
  assert.equal(parseDuration("7d"), 7 * 86_400_000);
  assert.equal(parseDuration("12h"), 12 * 3_600_000);
  assert.equal(parseDuration("7 days"), undefined);
  const p = parseArgs(["prune", "--keep", "3", "--dry-run", "--older-than=2d"], {
    values: ["keep", "older-than"],
    flags: ["dry-run"],
  });
  assert.ok(typeof p !== "string");
  assert.deepEqual([p.positional, p.values.get("keep"), p.values.get("older-than")], [
    ["prune"],
    "3",
    "2d",
  ]);
  assert.equal(parseArgs(["--nope"], {}), "unknown option --nope");
  assert.equal(parseArgs(["--keep"], { values: ["keep"] }), "--keep needs a value");
});

Deno.test("recoveryConf() follows the timeline it is given, by number", () => {
  const cmd = "/usr/bin/beyond-pg restore-wal %f %p";
  const time = recoveryConf(
    { kind: "time", at: new Date(0), text: "2026-11-23 15:30:00+00:00" },
    cmd,
    "1",
  );
  assert.match(time, /^recovery_target_time = '2026-11-23 15:30:00\+00:00'$/m);
  assert.match(time, /^recovery_target_timeline = '1'$/m);
  assert.match(time, /^recovery_target_action = 'promote'$/m);
  assert.match(time, /^restore_command = '\/usr\/bin\/beyond-pg restore-wal %f %p'$/m);
  const lsn = recoveryConf({ kind: "lsn", lsn: 0x103000148n }, cmd, "2");
  assert.match(lsn, /^recovery_target_lsn = '1\/3000148'$/m);
  assert.match(lsn, /^recovery_target_timeline = '2'$/m);
  const latest = recoveryConf({ kind: "latest" }, cmd);
  assert.match(latest, /^recovery_target_timeline = 'latest'$/m);
  assert.doesNotMatch(latest, /recovery_target_(time|lsn|action) =/);
});

Deno.test("backupChain(): an incremental backup restores from its full backup and every incremental between", () => {
  const full = {
    ...backup("full", "2026-11-20T00:00:00.000Z", "0/1000000"),
    kind: "full" as const,
    pg_manifest: "backup_manifest",
  };
  const i1 = {
    ...backup("i1", "2026-11-21T00:00:00.000Z", "0/5000000"),
    kind: "incremental" as const,
    parent: "full",
    pg_manifest: "backup_manifest",
  };
  const i2 = {
    ...backup("i2", "2026-11-22T00:00:00.000Z", "1/0"),
    kind: "incremental" as const,
    parent: "i1",
    pg_manifest: "backup_manifest",
  };
  const all = [i2, full, i1];
  assert.deepEqual((backupChain(i2, all) as BackupManifest[]).map((b) => b.label), [
    "full",
    "i1",
    "i2",
  ]);
  assert.deepEqual((backupChain(full, all) as BackupManifest[]).map((b) => b.label), ["full"]);
  assert.equal(
    backupChain(i2, [i2, full]),
    "backup i2 is incremental to i1, which is not in the archive; restore from another backup",
  );
  // The parent of the next incremental: the newest with PostgreSQL's manifest stored.
  const l = { timeline: 1, ancestors: [] };
  assert.equal((chooseParent(all, l) as BackupManifest).label, "i2");
  assert.match(
    chooseParent([backup("old", "2026-11-20T00:00:00.000Z", "0/1000000")], l) as string,
    /there is no backup to be incremental to/,
  );
});

Deno.test("pruneSelection() never breaks a chain: what a kept incremental builds on stays", () => {
  const full = {
    ...backup("full", "2026-11-20T00:00:00.000Z", "0/1000000"),
    kind: "full" as const,
  };
  const i1 = {
    ...backup("i1", "2026-11-21T00:00:00.000Z", "0/5000000"),
    kind: "incremental" as const,
    parent: "full",
  };
  const i2 = {
    ...backup("i2", "2026-11-22T00:00:00.000Z", "1/0"),
    kind: "incremental" as const,
    parent: "i1",
  };
  const other = backup("older", "2026-11-19T00:00:00.000Z", "0/800000");
  const now = new Date("2026-11-23T00:00:00.000Z");
  assert.deepEqual(pruneSelection([full, i1, i2, other], { keep: 1 }, now).map((b) => b.label), [
    "older",
  ]);
  // Once a newer full backup is kept alone, the old chain may go.
  const full2 = { ...backup("full2", "2026-11-22T12:00:00.000Z", "1/100"), kind: "full" as const };
  assert.deepEqual(
    pruneSelection([full, i1, i2, full2], { keep: 1 }, now).map((b) => b.label).sort(),
    ["full", "i1", "i2"],
  );
});
