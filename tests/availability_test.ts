/**
 * Availability limits against a real supervisor, postgres and PgBouncer: a descriptor flood on
 * the HTTP port from an unprivileged user, idle unauthenticated connections on 5432, and a store
 * that answers a WAL GET with 1 GiB.
 */
import assert from "node:assert/strict";
import { ControlClient } from "../src/rpc/client.ts";
import { ok } from "./support/control.ts";
import { startFakeS3 } from "./support/fake_s3.ts";
import { type Flood, startFlood } from "./support/flood.ts";
import {
  beyondPgCommand,
  cleanup,
  type Instance,
  postmasterPid,
  psql,
  startSupervisor,
} from "./support/harness.ts";
import { freshBucket, s3Client, s3Env } from "./support/s3.ts";
import { WAL_OBJECT_MAX_BYTES } from "../src/wal/target.ts";
import { S3Error } from "../src/s3/client.ts";

const READY = /\[beyond-pg\] ready:/;

/** "Max open files" soft limit of a process. */
function openFilesLimit(pid: number): number {
  const line = Deno.readTextFileSync(`/proc/${pid}/limits`).split("\n")
    .find((l) => l.startsWith("Max open files"))!;
  return Number(line.split(/\s{2,}/)[1]);
}

function fdCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/** VmRSS and VmHWM (peak) of a process, in MiB. */
function memoryMb(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string) => Number(status.match(new RegExp(`^${k}:\\s+(\\d+) kB`, "m"))![1]);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

const fresh = Deno.createHttpClient({ poolMaxIdlePerHost: 0 }); // a new connection each time

/** GET on a fresh connection, up to `attempts` times with a 2 s timeout each. */
async function probe(
  port: number,
  path: string,
  attempts = 5,
): Promise<{ status: number; body: string; attempts: number }> {
  let last: unknown;
  for (let i = 1; i <= attempts; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        client: fresh,
        signal: AbortSignal.timeout(2000),
      });
      return { status: res.status, body: await res.text(), attempts: i };
    } catch (error) {
      last = error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${path}: no answer in ${attempts} attempts: ${last}`);
}

function alive(pg: Instance): boolean {
  try {
    return !Deno.readTextFileSync(`/proc/${pg.proc.pid}/stat`).includes(") Z ");
  } catch {
    return false;
  }
}

Deno.test("FD flood: 4,200 silent and trickling connections from nobody to the HTTP port under a 4096-descriptor limit; the supervisor lives, /healthz and control answer, a killed postgres comes back", async () => {
  // Root without CAP_SYS_RESOURCE (as in a container) and 4096 descriptors: the supervisor
  // cannot raise its limit, so a flood that it accepted and held would exhaust it.
  const pg = await startSupervisor({
    wrap: [
      "prlimit",
      "--nofile=4096:4096",
      "setpriv",
      "--bounding-set=-sys_resource",
      "--inh-caps=-sys_resource",
      "--",
    ],
  });
  let flood: Flood | undefined;
  let sampler: ReturnType<typeof setInterval> | undefined;
  try {
    await pg.waitFor(READY, 90_000);
    assert.equal(openFilesLimit(pg.proc.pid), 4096);
    const idleFds = fdCount(pg.proc.pid);
    let maxFds = idleFds;
    sampler = setInterval(() => {
      try {
        maxFds = Math.max(maxFds, fdCount(pg.proc.pid));
      } catch { /* exited: asserted below */ }
    }, 100);

    // 4,200 connections, 50 of them sending a byte a second; each redialled 3 s after the
    // server closes it, so the pressure lasts.
    flood = await startFlood(pg.httpPort, { count: 4200, redialMs: 3000, trickle: 50 });
    const uid = Deno.readTextFileSync(`/proc/${flood.pid}/status`).match(/^Uid:\s+(\d+)/m)![1];
    assert.equal(uid, "65534", "the flood runs as nobody");
    await flood.until((s) => s.opened >= 4200, 60_000);

    const attempts: number[] = [];
    for (let round = 0; round < 3; round++) {
      const h = await probe(pg.httpPort, "/healthz");
      assert.equal(h.status, 200);
      attempts.push(h.attempts);
      const status = await ok<{ state: string }>(pg, "status");
      assert.equal(status.state, "running");
      await new Promise((r) => setTimeout(r, 500));
    }

    // postgres killed while the flood keeps redialling is restarted (spawning needs free
    // descriptors).
    await flood.until((s) => s.opened >= 6000, 60_000);
    const before = postmasterPid(pg.pgdata);
    const mark = pg.lines.length;
    Deno.kill(before, "SIGKILL");
    await pg.waitFor(/postgres is back/, 90_000, mark);
    assert.notEqual(postmasterPid(pg.pgdata), before);
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
    assert.equal((await probe(pg.httpPort, "/healthz")).status, 200);
    const during = { ...flood.stats };
    assert.ok(alive(pg), "the supervisor is alive");
    await flood.stop();
    flood = undefined;
    clearInterval(sampler);
    sampler = undefined;

    // After the flood: everything answers at the first attempt.
    await new Promise((r) => setTimeout(r, 500));
    const h = await probe(pg.httpPort, "/healthz", 1);
    assert.equal(h.status, 200);
    const ready = await probe(pg.httpPort, "/readyz", 1);
    assert.equal(ready.status, 200, ready.body);
    const metrics = await probe(pg.httpPort, "/metrics", 1);
    assert.equal(metrics.status, 200);
    // beyond_pg_up comes from a query with its own 1.5 s timeout, on an admin connection that
    // the restart dropped: on a loaded machine the first scrape may still say 0.
    const upDeadline = Date.now() + 15_000;
    let up = metrics.body;
    while (!/^beyond_pg_up 1$/m.test(up) && Date.now() < upDeadline) {
      await new Promise((r) => setTimeout(r, 500));
      up = (await probe(pg.httpPort, "/metrics")).body;
    }
    assert.match(up, /^beyond_pg_up 1$/m);
    assert.equal((await ok<{ state: string }>(pg, "status")).state, "running");
    assert.ok(
      pg.lines.some((l) => /http 127\.0\.0\.1:\d+: all 32 connection slots taken/.test(l)),
      "one warning names the flood",
    );
    console.log(
      `flood: ${during.opened} connections opened (${during.failed} failed dials), ` +
        `${during.closedByServer} closed by the server; supervisor descriptors ${idleFds} idle, ` +
        `${maxFds} at most (limit 4096); /healthz attempts during the flood: ${
          attempts.join(", ")
        }`,
    );
    assert.ok(maxFds < 400, `the supervisor held ${maxFds} descriptors`);
    assert.equal(await pg.stop(), 0);
  } finally {
    if (sampler) clearInterval(sampler);
    await flood?.stop();
    await cleanup(pg);
  }
});

Deno.test("5432 flood: 500 idle unauthenticated connections from nobody; a client with the password logs in during it, and PgBouncer drops the idle ones after client_login_timeout", async () => {
  const pg = await startSupervisor();
  let flood: Flood | undefined;
  try {
    await pg.waitFor(READY, 90_000);
    const ini = Deno.readTextFileSync(`${pg.root}/run/pgbouncer/pgbouncer.ini`);
    assert.match(ini, /^max_client_conn = 2048$/m); // BEYOND_PG_RAM_MB=1024 in the harness
    assert.match(ini, /^client_login_timeout = 10$/m);
    const bouncer = Number(Deno.readTextFileSync(`${pg.root}/run/pgbouncer/pgbouncer.pid`).trim());
    assert.ok(openFilesLimit(bouncer) >= 2048 + 1024, `PgBouncer: ${openFilesLimit(bouncer)}`);

    flood = await startFlood(pg.port, { count: 500 });
    await flood.until((s) => s.open >= 500, 30_000);
    const floodAt = performance.now();
    const t0 = performance.now();
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
    const loginMs = performance.now() - t0;
    assert.ok(loginMs < 5000, `login took ${loginMs} ms`);
    assert.equal(flood.stats.closedByServer, 0, "the idle ones are still held");

    const done = await flood.until((s) => s.closedByServer >= 500, 40_000);
    const droppedAfter = performance.now() - floodAt;
    console.log(
      `5432 flood: login during it in ${loginMs.toFixed(0)} ms; ${done.closedByServer} idle ` +
        `connections dropped by PgBouncer ${(droppedAfter / 1000).toFixed(1)} s after the flood`,
    );
    assert.ok(droppedAfter < 25_000, `dropped after ${droppedAfter} ms`);
    assert.equal(await psql(pg.port, "select 2", { password: pg.password }), "2");
    assert.equal(await pg.stop(), 0);
  } finally {
    await flood?.stop();
    await cleanup(pg);
  }
});

Deno.test("a store that answers a WAL GET with 1 GiB: the fetch fails with one line and the supervisor's memory stays bounded", async () => {
  const HUGE = "0000000100000000000000F0";
  const store = startFakeS3({ huge: [HUGE, "0000000100000000000000F1"], hugeBytes: 1 << 30 });
  const pg = await startSupervisor({ env: s3Env("fake", { endpoint: store.endpoint }) });
  try {
    await pg.waitFor(READY, 90_000);
    await pg.waitFor(/archiving to s3:\/\//);
    const pid = pg.proc.pid;
    const base = memoryMb(pid);
    let maxRss = base.rss;
    const sampler = setInterval(() => {
      maxRss = Math.max(maxRss, memoryMb(pid).rss);
    }, 20);
    const messages: string[] = [];
    try {
      // restore_command's request to the supervisor's spool, three times over.
      for (let i = 0; i < 3; i++) {
        const client = await ControlClient.unix(`${pg.root}/run/archive/archive.sock`);
        try {
          const res = await client.call("restore", { name: HUGE }, 60_000);
          assert.ok(!res.ok, JSON.stringify(res));
          messages.push(res.error.message);
        } finally {
          client.close();
        }
      }
    } finally {
      clearInterval(sampler);
    }
    const after = memoryMb(pid);
    for (const m of messages) {
      assert.ok(!m.includes("\n"));
      assert.match(
        m,
        new RegExp(
          `^S3 GET s3://fake/db/pg15-\\d+/wal/${HUGE} answered with more than 17825792 bytes where beyond-pg stores at most 17825792; remove or replace that object, or check that BEYOND_PG_S3_ENDPOINT is the right store$`,
        ),
      );
    }

    // restore-wal itself (postgres's restore_command): one line on stderr, exit 126.
    const c = beyondPgCommand([
      "restore-wal",
      "0000000100000000000000F1",
      `${pg.root}/RECOVERYXLOG`,
    ]);
    const out = await new Deno.Command(c.cmd, {
      args: c.args,
      env: { BEYOND_PG_RUN_DIR: `${pg.root}/run`, DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 126, stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.match(
      stderr,
      /0000000100000000000000F1: S3 GET .* answered with more than 17825792 bytes/,
    );
    assert.throws(() => Deno.statSync(`${pg.root}/RECOVERYXLOG`), Deno.errors.NotFound);

    console.log(
      `1 GiB answers: ${store.hugeRequests} requests, ${
        (store.hugeSent / 2 ** 20).toFixed(0)
      } MiB ` +
        `sent before the client hung up; supervisor RSS ${base.rss.toFixed(0)} MB before, ` +
        `${maxRss.toFixed(0)} MB at most, ${after.rss.toFixed(0)} MB after (peak ever ${
          after.peak.toFixed(0)
        } MB)`,
    );
    assert.ok(after.peak < 300, `supervisor peak RSS ${after.peak} MB`);
    assert.ok(after.rss < base.rss + 128, `RSS ${base.rss} → ${after.rss} MB`);
    assert.ok(
      store.hugeSent < store.hugeRequests * (64 << 20),
      `the store sent ${store.hugeSent} bytes in ${store.hugeRequests} answers`,
    );
    assert.ok(alive(pg));
    assert.equal(await pg.stop(), 0);
  } finally {
    await cleanup(pg);
    await store.close();
  }
});

Deno.test("the WAL cap against radosgw: an object of exactly 17 MiB reads back whole, one byte more is refused, listings and small objects still work", async () => {
  const bucket = await freshBucket("cap");
  const client = s3Client(bucket);
  const fits = new Uint8Array(WAL_OBJECT_MAX_BYTES).fill(3);
  await client.put("db/wal/fits", fits);
  await client.put("db/wal/over", new Uint8Array(WAL_OBJECT_MAX_BYTES + 1));
  await client.put("db/beyond-pg.json", new TextEncoder().encode('{"major":15}'));
  const got = await client.get("db/wal/fits", 30_000, { maxBytes: WAL_OBJECT_MAX_BYTES });
  assert.equal(got?.body.length, WAL_OBJECT_MAX_BYTES);
  await assert.rejects(
    client.get("db/wal/over", 30_000, { maxBytes: WAL_OBJECT_MAX_BYTES }),
    (e: Error) =>
      e instanceof S3Error && !e.transient &&
      /answered with 17825793 bytes where beyond-pg stores at most 17825792/.test(e.message),
  );
  await assert.rejects(client.get("db/wal/fits"), /where beyond-pg stores at most 1048576/);
  assert.equal(
    new TextDecoder().decode((await client.get("db/beyond-pg.json"))!.body),
    '{"major":15}',
  );
  assert.deepEqual((await client.list("db/")).map((o) => o.key).sort(), [
    "db/beyond-pg.json",
    "db/wal/fits",
    "db/wal/over",
  ]);
});
