/**
 * The serverless lifecycle against real postgres and PgBouncer: a fork booted from a
 * crash-consistent copy of a live volume (every acknowledged commit present, archiving never
 * into the parent's prefix, inherited slots dropped, a new certificate for new names), idle
 * scale-to-zero, and a generation handoff with clients through a TCP front.
 */
import assert from "node:assert/strict";
import { PgConnection } from "../src/pg/client.ts";
import { ok } from "./support/control.ts";
import { Front } from "./support/front.ts";
import {
  cleanup,
  clusterState,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";
import { copyVolume, frozen } from "./support/volume.ts";
import { percentile, Workload, WORKLOAD_TABLE } from "./support/workload.ts";

const READY = /\[beyond-pg\] ready:/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function chownLike(path: string, like: string): void {
  const st = Deno.statSync(like);
  Deno.chownSync(path, st.uid, st.gid);
}

Deno.test("fork: a crash-consistent copy of a live volume under writes boots as a fork", async () => {
  const parentRoot = await tempRoot("h8-parent-");
  const forkRoot = await tempRoot("h8-fork-");
  let parent: Instance | undefined;
  let fork: Instance | undefined;
  let writer: Workload | undefined;
  try {
    Deno.mkdirSync(`${parentRoot}/hooks/pre-fork.d`, { recursive: true });
    Deno.writeTextFileSync(
      `${parentRoot}/hooks/pre-fork.d/10-mark`,
      `#!/bin/sh\ntouch ${parentRoot}/pre-fork-ran\n`,
    );
    Deno.chmodSync(`${parentRoot}/hooks/pre-fork.d/10-mark`, 0o755);
    parent = await startSupervisor({
      root: parentRoot,
      port: 16700,
      directPort: 16701,
      httpPort: 16702,
      env: { BEYOND_PG_VOLUME_ID: "vol-parent", BEYOND_PG_TLS_NAMES: "parent.example" },
    });
    await parent.waitFor(READY, 120_000);
    const pw = parent.password;
    await psql(parent.directPort, WORKLOAD_TABLE, { password: pw });
    await psql(
      parent.directPort,
      "SELECT pg_create_physical_replication_slot('replica_a', true); SELECT pg_create_logical_replication_slot('logical_a', 'test_decoding')",
      { password: pw },
    );
    const parentStatus = await ok<{ tls: { fingerprint: string }; fork_of?: string }>(
      parent,
      "status",
    );
    assert.equal(parentStatus.fork_of, undefined);

    writer = new Workload({ port: parent.port, password: pw, clients: 4 });
    writer.start();
    await sleep(1500);
    // pre-fork: its hooks, a checkpoint, and the WAL a fork of a snapshot taken now replays.
    const pre = await ok<{ redoDistanceBytes: number; hooks: string[] }>(parent, "pre-fork");
    assert.deepEqual(pre.hooks, ["10-mark"]);
    assert.ok(Deno.statSync(`${parentRoot}/pre-fork-ran`).isFile);
    assert.ok(pre.redoDistanceBytes >= 0 && pre.redoDistanceBytes < 16 << 20, JSON.stringify(pre));
    // The snapshot: everything stopped, then what was acknowledged, then the copy.
    let acked: number[] = [];
    await frozen(parent, async () => {
      acked = [...writer!.acked];
      await copyVolume(`${parentRoot}/data`, `${forkRoot}/data`);
    });
    assert.ok(acked.length > 50, `only ${acked.length} commits before the copy`);
    await sleep(300);
    await writer.stop();
    assert.deepEqual(writer.failed, []);

    // The parent had archived to a prefix (its marker travels with the volume).
    const marker = `${forkRoot}/data/main/beyond/archive.json`;
    Deno.writeTextFileSync(
      marker,
      JSON.stringify({ target: "s3://bucket/parent", since: new Date().toISOString() }) + "\n",
    );
    chownLike(marker, `${forkRoot}/data/main/PG_VERSION`);

    const forkEnv = {
      BEYOND_PG_VOLUME_ID: "vol-fork",
      BEYOND_PG_TLS_NAMES: "fork.example",
      // The parent's prefix: must not be archived to.
      BEYOND_PG_ARCHIVE_TARGET: "s3://bucket/parent",
      BEYOND_PG_S3_ENDPOINT: "http://127.0.0.1:9",
      BEYOND_PG_S3_ACCESS_KEY: "k",
      BEYOND_PG_S3_SECRET_KEY: "s",
    };
    const forkPorts = { port: 16703, directPort: 16704, httpPort: 16705 };
    fork = await startSupervisor({ root: forkRoot, ...forkPorts, env: forkEnv });
    await fork.waitFor(READY, 120_000);
    assert.ok(fork.lines.some((l) => /redo starts at|was interrupted/.test(l)), "crash recovery");
    assert.ok(fork.lines.some((l) => /pg_wal pointed at .*h8-parent-/.test(l)));
    assert.equal(Deno.readLinkSync(`${forkRoot}/data/main/pg_wal`), `${forkRoot}/data/wal`);

    // Every commit acknowledged before the copy is there.
    const present = new Set(
      (await psql(fork.directPort, "SELECT id FROM acked", { password: pw })).split("\n")
        .map(Number),
    );
    const missing = acked.filter((id) => !present.has(id));
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged ids lost`);

    const st = await ok<{
      fork_of: string;
      fork: { archive: string; slotsDropped?: string[]; firstBoot: boolean };
      archive: { target: string | null };
      tls: { fingerprint: string; source: string };
    }>(fork, "status");
    assert.equal(st.fork_of, "vol-parent");
    assert.equal(st.fork.firstBoot, true);
    assert.match(st.fork.archive, /prefix the parent volume \(vol-parent\) archives to/);
    assert.equal(st.archive.target, null);
    assert.equal(st.tls.source, "self-signed");
    assert.notEqual(
      st.tls.fingerprint,
      parentStatus.tls.fingerprint,
      "a certificate for the fork's names",
    );
    for (let i = 0; i < 50 && !st.fork.slotsDropped; i++) {
      await sleep(100);
      st.fork = (await ok<typeof st>(fork, "status")).fork;
    }
    assert.deepEqual(st.fork.slotsDropped, ["logical_a", "replica_a"]);
    assert.equal(
      await psql(fork.directPort, "SELECT count(*) FROM pg_replication_slots", { password: pw }),
      "0",
    );
    assert.equal(
      await psql(parent.directPort, "SELECT count(*) FROM pg_replication_slots", { password: pw }),
      "2",
    );
    const forkMarker = JSON.parse(Deno.readTextFileSync(marker));
    assert.ok(forkMarker.off, "the inherited archive marker is off");

    // The next boot of the fork is not a fork's first boot; the parent's prefix stays refused.
    assert.equal(await fork.stop(), 0);
    fork = await startSupervisor({ root: forkRoot, ...forkPorts, env: forkEnv });
    await fork.waitFor(READY, 120_000);
    const again = await ok<{ fork_of: string; fork: { firstBoot: boolean; archive: string } }>(
      fork,
      "status",
    );
    assert.equal(again.fork_of, "vol-parent");
    assert.equal(again.fork.firstBoot, false);
    assert.match(again.fork.archive, /set a new prefix/);
    assert.equal(await fork.stop(), 0);
    assert.equal(await parent.stop(), 0);
  } finally {
    await writer?.stop().catch(() => {});
    await cleanup(...[parent, fork].filter((x): x is Instance => x !== undefined));
    await removeRoot(parentRoot);
    await removeRoot(forkRoot);
  }
});

Deno.test("idle: stays up while a client is connected, then stops cleanly with exit 0", async () => {
  const root = await tempRoot("h8-idle-");
  let pg: Instance | undefined;
  try {
    const inst = pg = await startSupervisor({
      root,
      port: 16720,
      directPort: 16721,
      httpPort: 16722,
      env: { BEYOND_PG_IDLE_SHUTDOWN: "5" },
    });
    await inst.waitFor(READY, 120_000);
    // A session through PgBouncer, then one direct, each held for longer than the idle time.
    for (const port of [inst.port, inst.directPort]) {
      const conn = await PgConnection.connect({
        hostname: "127.0.0.1",
        port,
        user: "postgres",
        database: "postgres",
        password: inst.password,
      });
      await conn.query("SELECT 1");
      await sleep(6500);
      const st = await ok<{ state: string; idle: { staysUpBecause: string } }>(inst, "status");
      assert.equal(st.state, "running");
      assert.match(
        st.idle.staysUpBecause,
        port === inst.port ? /1 client session on the pooled port/ : /on the direct port/,
      );
      conn.close();
    }
    const metrics = await (await fetch(`http://127.0.0.1:${inst.httpPort}/metrics`)).text();
    assert.match(metrics, /beyond_pg_idle_seconds \d+/);
    assert.match(metrics, /beyond_pg_last_client_activity_timestamp_seconds [1-9]/);
    const status = await inst.exited;
    assert.equal(status.code, 0);
    assert.ok(inst.lines.some((l) => /idle for \d+ s without clients/.test(l)));
    assert.ok(inst.lines.some((l) => /idle stop: checkpoint in/.test(l)));
    assert.equal(await clusterState(inst.pgdata), "shut down");
  } finally {
    if (pg) await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("handoff: clients through a front see a pause, none fails; the next generation replays nothing; abort resumes", async () => {
  const root1 = await tempRoot("h8-gen1-");
  const root2 = await tempRoot("h8-gen2-");
  let gen1: Instance | undefined;
  let gen2: Instance | undefined;
  let front: Front | undefined;
  let load: Workload | undefined;
  try {
    gen1 = await startSupervisor({ root: root1, port: 16730, directPort: 16731, httpPort: 16732 });
    await gen1.waitFor(READY, 120_000);
    const pw = gen1.password;
    await psql(gen1.directPort, WORKLOAD_TABLE, { password: pw });
    front = new Front(16739, gen1.port);
    load = new Workload({ port: front.port, password: pw, clients: 8 });
    load.start();
    // The next generation starts now and waits for the volume.
    gen2 = await startSupervisor({
      root: root2,
      port: 16733,
      directPort: 16734,
      httpPort: 16735,
      env: { BEYOND_PG_DATA_ROOT: `${root1}/data`, BEYOND_PG_LOCK_WAIT: "120" },
    });
    await gen2.waitFor(/waiting up to 120 s/, 60_000);
    await sleep(1000);

    const t0 = performance.now();
    front.hold();
    const prep = await ok<{ lsn: string; replayBytes: number; phases: Record<string, number> }>(
      gen1,
      "handoff-prepare",
    );
    assert.equal(prep.replayBytes, 0);
    const st1 = await ok<{ handoff: { state: string; lsn: string } }>(gen1, "status");
    assert.equal(st1.handoff.state, "handed-off");
    await gen2.waitFor(READY, 60_000);
    front.repoint(gen2.port);
    const t1 = performance.now();
    const stopped = gen1.stop();
    await sleep(1500);
    assert.equal(await stopped, 0);

    // Zero replay: the next generation's latest checkpoint is the handoff's.
    const cp = await psql(
      gen2.directPort,
      "SELECT checkpoint_lsn::text || ' ' || redo_lsn::text FROM pg_control_checkpoint()",
      { password: pw },
    );
    assert.equal(cp, `${prep.lsn} ${prep.lsn}`);
    assert.ok(!gen2.lines.some((l) => /redo starts at/.test(l)), "no WAL replay");

    // Abort: clients on gen2 queue, then carry on on the same connections.
    const lostBefore = load.inFlightLost.length;
    const a0 = performance.now();
    await ok(gen2, "handoff-prepare");
    await sleep(300);
    const aborted = await ok<{ resumed: boolean; ms: number }>(gen2, "handoff-abort");
    assert.equal(aborted.resumed, true);
    const a1 = performance.now();
    await sleep(1000);
    await load.stop();

    assert.deepEqual(load.failed, [], "no transaction failed");
    assert.equal(load.inFlightLost.length, lostBefore, "abort lost no connection");
    const present = new Set(
      (await psql(gen2.directPort, "SELECT id FROM acked", { password: pw })).split("\n")
        .map(Number),
    );
    assert.deepEqual([...load.acked].filter((id) => !present.has(id)), []);
    const stalls = load.stalls(t0, t1);
    const abortStalls = load.stalls(a0, a1);
    console.log(
      `handoff: prepare ${JSON.stringify(prep.phases)}; hold→repoint ${Math.round(t1 - t0)} ms; ` +
        `client pause p50 ${Math.round(percentile(stalls, 50))} ms, max ${
          Math.round(Math.max(...stalls))
        } ms; in flight at the handoff (retried) ${lostBefore}; abort pause max ${
          Math.round(Math.max(...abortStalls))
        } ms; ${load.acked.size} commits, 0 failed; next generation: ${
          gen2.lines.find((l) => /startup phases/.test(l))?.replace(/.*startup phases: /, "")
        }`,
    );
    assert.equal(await gen2.stop(), 0);
  } finally {
    await load?.stop().catch(() => {});
    front?.close();
    await cleanup(...[gen1, gen2].filter((x): x is Instance => x !== undefined));
    await removeRoot(root1);
    await removeRoot(root2);
  }
});
