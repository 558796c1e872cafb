/**
 * Restore truth: a restore never hands back less than the archive holds while saying it
 * succeeded, and archiving leaves no silent holes. Each failure the issue found is a test with a
 * marker table whose exact count is asserted. Real postgres, PgBouncer and radosgw.
 */
import assert from "node:assert/strict";
import { PG_MAJOR } from "./support/paths.ts";
import { ok } from "./support/control.ts";
import { RGW_HTTP, s3Client } from "./support/s3.ts";
import { FaultProxy } from "./support/proxy.ts";
import { waitDrained } from "./support/wal.ts";
import {
  freshBucket,
  markers,
  READY,
  restoreOnce,
  restoreServed,
  s3Env,
} from "./support/restore.ts";
import {
  beyondPgCommand,
  cleanup,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

async function sql(pg: Instance, text: string): Promise<string> {
  return await psql(pg.directPort, text, { password: pg.password });
}

/** `n` markers, then a segment switch: returns the segment the switch completed. */
async function addMarkers(pg: Instance, n: number): Promise<string> {
  await sql(
    pg,
    `insert into markers select (select coalesce(max(i), 0) from markers) + g from generate_series(1, ${n}) g`,
  );
  return await sql(pg, "select pg_walfile_name(pg_switch_wal())");
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("restore truth: a hole in the archive is named before anything is restored; --accept-gap restores up to it", async () => {
  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  const served: Instance[] = [];
  try {
    await origin.waitFor(READY, 60_000);
    await sql(origin, "create table markers (i int)");
    await ok(origin, "backup", {});
    await addMarkers(origin, 10);
    const holeSeg = await addMarkers(origin, 10); // this segment goes missing
    await addMarkers(origin, 10);
    await addMarkers(origin, 10);
    await waitDrained(origin, 60_000);
    const sysid = await sql(origin, "select system_identifier from pg_control_system()");
    await s3Client(bucket).delete(`db/pg${PG_MAJOR}-${sysid}/wal/${holeSeg}`);

    const refused = await restoreOnce(bucket, origin.password, ["--latest"]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(
      refused.stderr,
      new RegExp(
        `${holeSeg} is missing from the archive \\(\\d+ later segment\\(s\\) are there: a hole\\)`,
      ),
    );
    assert.match(refused.stderr, /--accept-gap/);
    assert.deepEqual(refused.entries, []);

    const gap = await restoreServed(bucket, origin.password, ["--latest", "--accept-gap"]);
    served.push(gap);
    assert.equal(await markers(gap), 10, "the rows before the hole, exactly");
    await gap.stop();

    // A time after the hole: it fails, and says which file is missing.
    const time = await sql(origin, "select now()::text");
    const late = await restoreOnce(bucket, origin.password, ["--to-time", time]);
    assert.notEqual(late.code, 0);
    assert.match(late.stderr, new RegExp(`beyond a hole in the archive: ${holeSeg} is missing`));
    assert.deepEqual(late.entries, []);
  } finally {
    await cleanup(origin, ...served);
  }
});

Deno.test("restore truth: an archived volume booted without a target keeps its WAL; no hole once the target is back", async () => {
  const bucket = await freshBucket();
  const root = await tempRoot();
  let pg = await startSupervisor({ root, env: s3Env(bucket) });
  const served: Instance[] = [];
  try {
    await pg.waitFor(READY, 60_000);
    await sql(pg, "create table markers (i int)");
    await ok(pg, "backup", {});
    await addMarkers(pg, 10);
    await waitDrained(pg, 60_000);
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);

    // No target: archive_command fails (nothing recycled), status and metrics say why.
    pg = await startSupervisor({ root, port: pg.port, directPort: pg.directPort });
    await pg.waitFor(READY, 60_000);
    await pg.waitFor(/archive: target missing: this volume was archived to s3:/);
    await addMarkers(pg, 10);
    await addMarkers(pg, 10);
    await until(
      "a failed archive attempt",
      async () => Number(await sql(pg, "select failed_count from pg_stat_archiver")) > 0,
    );
    const status = await ok<{ archive: { problem?: string; firstNotArchived?: string } }>(
      pg,
      "status",
    );
    assert.match(status.archive.problem ?? "", /target missing/);
    assert.ok(status.archive.firstNotArchived, JSON.stringify(status.archive));
    const metrics = await (await fetch(`http://127.0.0.1:${pg.httpPort}/metrics`)).text();
    assert.match(metrics, /^beyond_pg_archive_target_missing 1$/m);
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);

    // The target is back: the kept WAL drains, and --latest has every marker.
    pg = await startSupervisor({
      root,
      env: s3Env(bucket),
      port: pg.port,
      directPort: pg.directPort,
    });
    await pg.waitFor(READY, 60_000);
    await addMarkers(pg, 10);
    await waitDrained(pg, 120_000);
    const latest = await restoreServed(bucket, pg.password, ["--latest"]);
    served.push(latest);
    assert.equal(await markers(latest), 40);
    await latest.stop();

    // Off on purpose: archive_command succeeds (WAL recycles), and it is recorded.
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);
    pg = await startSupervisor({
      root,
      env: { BEYOND_PG_ARCHIVE_TARGET: "off" },
      port: pg.port,
      directPort: pg.directPort,
    });
    await pg.waitFor(READY, 60_000);
    await pg.waitFor(/archiving to s3:.* switched off \(BEYOND_PG_ARCHIVE_TARGET=off\)/);
    const before = Number(await sql(pg, "select archived_count from pg_stat_archiver"));
    await addMarkers(pg, 1);
    await until(
      "the segment counted as archived",
      async () => Number(await sql(pg, "select archived_count from pg_stat_archiver")) > before,
    );
  } finally {
    await cleanup(pg, ...served);
    await removeRoot(root);
  }
});

Deno.test("restore truth: a quiet database's last commit reaches the archive within archive_timeout", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: { ...s3Env(bucket), BEYOND_PG_ARCHIVE_TIMEOUT: "5" } });
  try {
    await pg.waitFor(READY, 60_000);
    assert.equal(await sql(pg, "show archive_timeout"), "5s");
    await sql(pg, "create table markers (i int)");
    await waitDrained(pg, 60_000);
    await sql(pg, "insert into markers values (1)");
    const seg = await sql(pg, "select pg_walfile_name(pg_current_wal_lsn())");
    const t0 = Date.now();
    await until(
      "the segment with the last insert archived",
      async () =>
        (await sql(pg, "select coalesce(last_archived_wal, '') from pg_stat_archiver")) >= seg,
      60_000,
    );
    const secs = (Date.now() - t0) / 1000;
    console.log(
      `quiet database: last commit archived after ${secs.toFixed(1)} s (archive_timeout 5 s)`,
    );
    assert.ok(secs < 20, `${secs} s`);
  } finally {
    await cleanup(pg);
  }
});

Deno.test("restore truth: prune with a restored branch in the prefix keeps the primary's backup and WAL", async () => {
  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  const served: Instance[] = [];
  try {
    await origin.waitFor(READY, 60_000);
    await sql(origin, "create table markers (i int)");
    await ok(origin, "backup", { label: "primary" });
    await addMarkers(origin, 10);
    const time = await sql(origin, "select now()::text");
    await addMarkers(origin, 10);
    await waitDrained(origin, 60_000);
    // A test restore, with a backup taken on it (timeline 2).
    const branch = await restoreServed(bucket, origin.password, ["--to-time", time]);
    served.push(branch);
    await ok(branch, "backup", { label: "branch" });
    await branch.stop();

    const c = beyondPgCommand(["backups", "prune", "--keep", "1", "--dry-run"]);
    const out = await new Deno.Command(c.cmd, {
      args: c.args,
      env: origin.env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.doesNotMatch(text, /would remove primary/);
    assert.match(
      text,
      /would remove 0 backup\(s\) and 0 WAL file\(s\)(, would abort 0 abandoned upload\(s\))?; kept 2/,
    );
    // And a restore of the primary still has everything.
    const latest = await restoreServed(bucket, origin.password, ["--latest"]);
    served.push(latest);
    assert.equal(await markers(latest), 20);
  } finally {
    await cleanup(origin, ...served);
  }
});

Deno.test("restore truth: a port in use is one line naming the port and its setting", async () => {
  const squatter = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (squatter.addr as Deno.NetAddr).port;
  try {
    for (const which of ["directPort", "httpPort"] as const) {
      const pg = await startSupervisor({ [which]: port });
      try {
        const status = await pg.exited;
        assert.equal(status.code, 2);
        const setting = which === "directPort" ? "BEYOND_PG_DIRECT_PORT" : "BEYOND_PG_HTTP";
        const line = pg.lines.find((l) => l.includes("already in use"));
        assert.ok(line, pg.lines.join("\n"));
        assert.match(line!, new RegExp(`${port} is already in use \\(${setting}\\)`));
        assert.equal(pg.lines.filter((l) => /^\s+at /.test(l)).length, 0, "no stack trace");
      } finally {
        await cleanup(pg);
      }
    }
  } finally {
    squatter.close();
  }
});

Deno.test("restore truth: on a small volume, archived WAL is not kept until the disk is full", async () => {
  const bucket = await freshBucket();
  const root = await tempRoot();
  const data = `${root}/data`;
  Deno.mkdirSync(data);
  // The data root on a 300 MB tmpfs, in a mount namespace of the supervisor's own.
  const pg = await startSupervisor({
    root,
    env: s3Env(bucket),
    wrap: [
      "unshare",
      "-m",
      "--propagation",
      // In a test lane the chroot's root is no mount point; the lane's namespace is private.
      Deno.env.get("BEYOND_TEST_LANE") ? "unchanged" : "private",
      "sh",
      "-c",
      'mount -t tmpfs -o size=300m,mode=0755 tmpfs "$0" && exec "$@"',
      data,
    ],
  });
  try {
    await pg.waitFor(READY, 60_000);
    assert.equal(await sql(pg, "show max_wal_size"), "75MB");
    assert.equal(await sql(pg, "show wal_keep_size"), "18MB");
    await sql(pg, "create table w (i int)");
    // 28 segments of 16 MB (~450 MB of WAL) through a 300 MB volume, archived as they go.
    let last = "";
    for (let i = 0; i < 28; i++) {
      last = await sql(pg, `insert into w values (${i}); select pg_walfile_name(pg_switch_wal())`);
    }
    await until(
      "the archiver to catch up",
      async () =>
        (await sql(pg, "select coalesce(last_archived_wal, '') from pg_stat_archiver")) >= last,
      120_000,
    );
    await sql(pg, "checkpoint");
    const walMb = Number(await sql(pg, "select sum(size) / 1048576 from pg_ls_waldir()"));
    console.log(`small volume: ${walMb.toFixed(0)} MB of WAL kept after ~400 MB written`);
    assert.ok(walMb < 160, `${walMb} MB of WAL kept on a 300 MB volume`);
    assert.equal(pg.lines.filter((l) => /No space left|PANIC/.test(l)).length, 0);
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("restore truth: a store at 60 kB/s still stores every segment; a hung one is a failure with a reason within the idle timeout", async () => {
  const bucket = await freshBucket();
  const proxy = new FaultProxy(RGW_HTTP);
  const pg = await startSupervisor({
    env: {
      ...s3Env(bucket, { endpoint: `http://127.0.0.1:${proxy.port}`, parallel: 2 }),
      BEYOND_PG_S3_IDLE_TIMEOUT: "3",
    },
  });
  try {
    await pg.waitFor(READY, 60_000);
    await sql(pg, "create table markers (i int)");
    await waitDrained(pg, 60_000);

    // Slow: 60 kB/s per connection each way, far below the old 60 s whole-request limit for a
    // segment (zstd-compressed, a switched segment is small; incompressible rows make it big).
    proxy.throttle = 60_000;
    proxy.throttleDown = 60_000;
    await sql(
      pg,
      "insert into markers select i from generate_series(1, 40000) i; " +
        "create table noise as select md5(random()::text) || md5(random()::text) as t from generate_series(1, 30000)",
    );
    const slowSeg = await sql(pg, "select pg_walfile_name(pg_switch_wal())");
    const t0 = Date.now();
    await waitDrained(pg, 300_000, slowSeg);
    const status = await ok<{ archive: { lastError?: string; archived: number } }>(pg, "status");
    assert.equal(status.archive.lastError, undefined, JSON.stringify(status.archive));
    console.log(
      `60 kB/s store: ${slowSeg} stored after ${((Date.now() - t0) / 1000).toFixed(1)} s, ` +
        `no failure (idle timeout 3 s)`,
    );

    // Hung: no byte moves. The failure and its reason are in status within the idle timeout.
    proxy.throttle = 0;
    proxy.throttleDown = 0;
    proxy.stall = true;
    await sql(pg, "insert into markers values (0)");
    await sql(pg, "select pg_switch_wal()");
    const t1 = Date.now();
    let lastError = "";
    await until("a failure with a reason in status", async () => {
      const s = await ok<{ archive: { lastError?: string } }>(pg, "status");
      lastError = s.archive.lastError ?? "";
      return lastError !== "";
    }, 60_000);
    const secs = (Date.now() - t1) / 1000;
    console.log(`hung store: failure in status after ${secs.toFixed(1)} s: ${lastError}`);
    assert.match(lastError, /stalled|no answer|no progress/);
    assert.ok(secs < 3 + 10, `${secs} s`);
    const metrics = await (await fetch(`http://127.0.0.1:${pg.httpPort}/metrics`)).text();
    assert.match(metrics, /^beyond_pg_archive_files_total\{result="failed"\} [1-9]/m);

    // Back: the backlog drains without a hole.
    proxy.stall = false;
    const last = await sql(pg, "select pg_walfile_name(pg_switch_wal())");
    await waitDrained(pg, 120_000, last);
  } finally {
    await cleanup(pg);
    proxy.close();
  }
});
