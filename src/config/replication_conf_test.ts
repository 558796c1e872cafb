import assert from "node:assert/strict";
import { renderConf } from "./conf_file.ts";
import { replicationEntries, upstreamConninfo } from "./replication_conf.ts";

const up = {
  host: "10.0.0.5",
  port: 5433,
  name: "r1",
  passfile: "/run/beyond-pg/replication/pgpass",
};
const sync = { method: "ANY" as const, k: 1, names: ["r1", "r2"] };
const text = (e: ReturnType<typeof replicationEntries>) => renderConf("h", e ?? []);

Deno.test("replicationEntries(): a Tier 2 primary waits for ANY 1 (r1, r2) at remote_write", () => {
  const conf = text(
    replicationEntries({ replicas: true, role: "primary", sync, level: "remote_write" }),
  );
  assert.match(conf, /^synchronous_standby_names = 'ANY 1 \(r1, r2\)'$/m);
  assert.match(conf, /^synchronous_commit = 'remote_write'$/m);
  assert.match(conf, /^wal_log_hints = on$/m);
  assert.match(conf, /^archive_mode = 'always'$/m);
  assert.doesNotMatch(conf, /primary_conninfo/);
});

Deno.test("replicationEntries(): a replica follows its primary by slot, TLS and the passfile", () => {
  const conf = text(replicationEntries({
    replicas: true,
    role: "replica",
    upstream: up,
    restoreCommand: "beyond-pg restore-wal %f %p",
    sync,
    level: "on",
  }));
  assert.match(conf, /^primary_slot_name = 'r1'$/m);
  assert.match(conf, /^recovery_target_timeline = 'latest'$/m);
  assert.match(conf, /^restore_command = 'beyond-pg restore-wal %f %p'$/m);
  const conninfo = conf.match(/^primary_conninfo = '(.*)'$/m)?.[1] ?? "";
  assert.match(conninfo, /host=10\.0\.0\.5 port=5433 user=beyond_replicator/);
  assert.match(conninfo, /passfile=\/run\/beyond-pg\/replication\/pgpass/);
  assert.match(conninfo, /sslmode=require channel_binding=require/);
  assert.doesNotMatch(conninfo, /password=/);
  // Same restart-only settings as the primary's: a promotion needs no restart.
  assert.match(conf, /^wal_log_hints = on$/m);
  assert.match(conf, /^archive_mode = 'always'$/m);
  assert.doesNotMatch(conf, /synchronous_standby_names/);
});

Deno.test("replicationEntries(): no file on a single node without sinks; sinks alone set the quorum", () => {
  const none = { method: "ANY" as const, k: 0, names: [] };
  assert.equal(
    replicationEntries({ replicas: false, role: "primary", sync: none, level: "remote_write" }),
    undefined,
  );
  const sinks = text(replicationEntries({
    replicas: false,
    role: "primary",
    sync: { method: "ANY", k: 1, names: ["s1", "s2"] },
    level: "on",
  }));
  assert.match(sinks, /^synchronous_standby_names = 'ANY 1 \(s1, s2\)'$/m);
  assert.doesNotMatch(sinks, /archive_mode|wal_log_hints/);
});

Deno.test("upstreamConninfo() quotes what libpq would split", () => {
  assert.match(
    upstreamConninfo({ ...up, passfile: "/a b/it's" }),
    /passfile='\/a b\/it\\'s'/,
  );
});
