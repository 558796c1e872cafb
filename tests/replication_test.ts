/**
 * Tier 2 against real postgres and PgBouncer on loopback: a replica clones itself from the
 * primary, serves reads on both ports and refuses writes with PostgreSQL's own error; the
 * primary shows each standby's LSNs and lag (status, /metrics, /v1/pg/replication/lag) and
 * changes its synchronous standbys by SIGHUP; promote makes the same PgBouncer serve writes;
 * the former primary, restarted as a replica, is rewound and follows. And the bad inputs.
 */
import assert from "node:assert/strict";
import { control, http, ok } from "./support/control.ts";
import { cleanup, freePort, psql, startSupervisor } from "./support/harness.ts";
import {
  READY,
  replStatus,
  sql,
  startPrimary,
  startReplica,
  streaming,
  until,
} from "./support/replication.ts";

function pgbouncerPid(root: string): number {
  return Number(Deno.readTextFileSync(`${root}/run/pgbouncer/pgbouncer.pid`).trim());
}

Deno.test("replica: clone, hot standby reads, sync standbys by SIGHUP, promote behind the same PgBouncer, rewind of the old primary", async () => {
  const p0 = await startPrimary("p0");
  try {
    await p0.waitFor(READY, 60_000);
    await sql(
      p0,
      "CREATE TABLE t (id int primary key); INSERT INTO t SELECT generate_series(1, 1000)",
    );
    const r1 = await startReplica("r1", p0);
    await r1.waitFor(READY, 120_000);
    assert.ok(r1.lines.some((l) => /replica: cloning from the primary/.test(l)));

    // Reads through PgBouncer (5432) and directly; writes fail with postgres's own error.
    assert.equal(await psql(r1.port, "SELECT count(*) FROM t", { password: r1.password }), "1000");
    assert.equal(await sql(r1, "SELECT pg_is_in_recovery()"), "t");
    await assert.rejects(
      psql(r1.port, "INSERT INTO t VALUES (0)", { password: r1.password }),
      /cannot execute INSERT in a read-only transaction/,
    );
    const rs = await ok<{ replication: { role: string; primary: string } }>(r1, "status");
    assert.equal(rs.replication.role, "replica");
    assert.equal(rs.replication.primary, `127.0.0.1:${p0.directPort}`);

    // The primary sees r1 streaming, with LSNs and lag, in status, metrics and the lag API.
    await streaming(p0, "r1");
    const lag = await http(p0, "/v1/pg/replication/lag");
    assert.equal(lag.status, 200);
    const lagJson = JSON.parse(lag.body);
    const r1Lag = lagJson.standbys.find((s: { name: string }) => s.name === "r1");
    assert.ok(r1Lag.flushLsn && r1Lag.replayLsn && "write" in r1Lag.lagBytes, lag.body);
    await until("metrics with the standby", async () => {
      const m = await http(p0, "/metrics");
      return /beyond_pg_replication_standby_lag_bytes\{standby="r1",stage="flush"\}/.test(m.body);
    });

    // Synchronous standbys change at runtime (SIGHUP): a commit now waits for r1's write.
    const pmPid = Number(Deno.readTextFileSync(`${p0.pgdata}/postmaster.pid`).split("\n")[0]);
    const set = await ok<{ synchronousStandbyNames: string; waiting: boolean }>(
      p0,
      "set-sync-standbys",
      { standbys: "ANY 1 (r1, r2)", level: "remote_write" },
    );
    assert.equal(set.synchronousStandbyNames, "ANY 1 (r1, r2)");
    assert.equal(await sql(p0, "SHOW synchronous_standby_names"), "ANY 1 (r1, r2)");
    assert.equal(await sql(p0, "SHOW synchronous_commit"), "remote_write");
    await sql(p0, "INSERT INTO t VALUES (1001)");
    assert.equal(
      await sql(p0, "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'r1'"),
      "quorum",
    );
    assert.equal(
      Number(Deno.readTextFileSync(`${p0.pgdata}/postmaster.pid`).split("\n")[0]),
      pmPid,
      "no restart",
    );

    // An unknown standby is accepted (PostgreSQL allows it) with a warning; commits wait and
    // status, /readyz and metrics say so.
    const ghost = await ok<{ warnings: string[]; waiting: boolean; problem: string }>(
      p0,
      "set-sync-standbys",
      { standbys: "FIRST 1 (ghost)" },
    );
    assert.match(ghost.warnings[0]!, /no slot or connection for ghost/);
    assert.equal(ghost.waiting, true);
    const waiting = sql(p0, "INSERT INTO t VALUES (1002)");
    await until("a commit waiting for ghost", async () => {
      const s = await replStatus(p0);
      return (s.sync?.waitingCommits ?? 0) > 0;
    });
    const ready = await http(p0, "/readyz");
    assert.equal(ready.status, 503);
    assert.match(ready.body, /commits wait: 0 of FIRST 1 \(ghost\) connected/);
    const metrics = await http(p0, "/metrics");
    assert.match(metrics.body, /^beyond_pg_replication_sync_quorum_met 0$/m);
    await ok(p0, "set-sync-standbys", { standbys: "ANY 1 (r1)" });
    await waiting; // released once r1 counts
    assert.equal((await http(p0, "/readyz")).status, 200);

    // promote on a primary is refused; on the replica it works, and r1's PgBouncer serves
    // writes without being restarted.
    const refused = await control(p0, "promote");
    assert.equal(refused.ok, false);
    assert.match(!refused.ok ? refused.error.message : "", /already a primary/);
    const bouncer = pgbouncerPid(r1.root);
    const conn = psql(r1.port, "SELECT 1", { password: r1.password }); // a pooled server conn
    await conn;
    const promoted = await ok<{ timeline: number; ms: number }>(r1, "promote");
    assert.equal(promoted.timeline, 2);
    await psql(r1.port, "INSERT INTO t VALUES (2000)", { password: r1.password });
    assert.equal(pgbouncerPid(r1.root), bouncer, "PgBouncer was not restarted");
    const rs2 = await ok<{ replication: { role: string } }>(r1, "status");
    assert.equal(rs2.replication.role, "primary");

    // The old primary writes something r1 never gets, stops, and comes back as r1's replica:
    // pg_rewind discards its fork, and it follows timeline 2.
    await ok(p0, "set-sync-standbys", { standbys: "off" });
    await sql(p0, "INSERT INTO t VALUES (-1)");
    assert.equal(await p0.stop(), 0);
    await ok(r1, "add-standby", { name: "p0" });
    const p0b = await startReplica("p0", r1, {}, {
      root: p0.root,
      port: p0.port,
      directPort: p0.directPort,
      httpPort: p0.httpPort,
    });
    await p0b.waitFor(READY, 120_000);
    assert.ok(p0b.lines.some((l) => /rewinding it onto/.test(l)), "rewound");
    await until(
      "the old primary has r1's row",
      async () => (await sql(p0b, "SELECT count(*) FROM t WHERE id = 2000")) === "1",
    );
    assert.equal(await sql(p0b, "SELECT count(*) FROM t WHERE id = -1"), "0");
    assert.equal(await sql(p0b, "SELECT pg_is_in_recovery()"), "t");
    await streaming(r1, "p0");
    assert.equal(await r1.stop(), 0);
    assert.equal(await p0b.stop(), 0);
  } finally {
    await cleanup();
  }
});

Deno.test("a standby that went past the fork without a rewind is rewound at its next boot", async () => {
  const p0 = await startPrimary("p0");
  try {
    await p0.waitFor(READY, 60_000);
    await sql(p0, "CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1)");
    const r1 = await startReplica("r1", p0);
    await r1.waitFor(READY, 120_000);
    await streaming(p0, "r1");
    await ok(r1, "promote");
    await sql(r1, "INSERT INTO t VALUES (2)");
    // The old primary checkpoints past the fork, then is made a standby with no rewind (what
    // PG 15's pg_rewind did against a primary promoted moments before: "no rewind required").
    await sql(p0, "INSERT INTO t VALUES (-1); CHECKPOINT");
    assert.equal(await p0.stop(), 0);
    await Deno.writeTextFile(`${p0.pgdata}/standby.signal`, "");
    await ok(r1, "add-standby", { name: "p0" });
    const p0b = await startReplica("p0", r1, {}, {
      root: p0.root,
      port: p0.port,
      directPort: p0.directPort,
      httpPort: p0.httpPort,
    });
    await p0b.waitFor(READY, 120_000);
    assert.ok(
      p0b.lines.some((l) => /past the point where the primary .* forked off/.test(l)),
      "rewound",
    );
    await until(
      "it follows timeline 2",
      async () => (await sql(p0b, "SELECT count(*) FROM t WHERE id = 2")) === "1",
    );
    assert.equal(await sql(p0b, "SELECT count(*) FROM t WHERE id = -1"), "0");
  } finally {
    await cleanup();
  }
});

Deno.test("replica bad inputs: wrong primary, wrong password, another cluster — one line each, no half clone", async () => {
  const p0 = await startPrimary("p0");
  try {
    await p0.waitFor(READY, 60_000);
    // Nobody listens there: retried with backoff, status says why, nothing that could boot.
    const nowhere = await startReplica("r9", freePort());
    await nowhere.waitFor(
      /cloning from 127\.0\.0\.1:\d+: cloning from the primary .* failed: .*retrying in/,
      60_000,
    );
    const st = await ok<{ state: string; reason: string }>(nowhere, "status");
    assert.equal(st.state, "booting");
    assert.match(st.reason, /could not connect|Connection refused/i);
    assert.equal(await exists(`${nowhere.pgdata}/PG_VERSION`), false);
    assert.equal(await nowhere.stop(), 0);

    // Wrong password: the same, naming authentication.
    const wrong = await startReplica("r8", p0, { BEYOND_PG_REPLICATION_PASSWORD: "not-it" });
    await wrong.waitFor(/password authentication failed.*retrying in/, 60_000);
    assert.equal(await exists(`${wrong.pgdata}/PG_VERSION`), false);
    assert.equal(await wrong.stop(), 0);

    // A replica volume pointed at another cluster's primary refuses to start (exit 2).
    const r1 = await startReplica("r1", p0);
    await r1.waitFor(READY, 120_000);
    assert.equal(await r1.stop(), 0);
    const other = await startPrimary("o0");
    await other.waitFor(READY, 60_000);
    const moved = await startReplica("r1", other, {}, { root: r1.root });
    const code = (await moved.exited).code;
    assert.equal(code, 2);
    assert.ok(
      moved.lines.some((l) =>
        /is another cluster \(system identifier \d+\); this volume's is \d+: point BEYOND_PG_PRIMARY/
          .test(l)
      ),
      moved.lines.join("\n"),
    );
    assert.equal(await exists(`${r1.pgdata}/PG_VERSION`), true, "the volume is untouched");
  } finally {
    await cleanup();
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("tier settings: a replica without a primary and a shared password are one line each", async () => {
  for (
    const [env, pattern] of [
      [
        { BEYOND_PG_TIER: "replica", BEYOND_PG_REPLICATION_PASSWORD: "x" },
        /needs BEYOND_PG_PRIMARY/,
      ],
      [
        { BEYOND_PG_TIER: "primary", BEYOND_PG_REPLICATION_PASSWORD: "test-secret-1" },
        /same as POSTGRES_PASSWORD/,
      ],
    ] as const
  ) {
    const pg = await startSupervisor({ env: { ...env } });
    try {
      assert.equal((await pg.exited).code, 2);
      assert.ok(pg.lines.some((l) => pattern.test(l)), pg.lines.join("\n"));
    } finally {
      await cleanup(pg);
    }
  }
});
