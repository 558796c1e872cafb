/**
 * Base backups and point-in-time restore against real postgres and radosgw: exact row counts
 * at several times and LSNs, --latest across a promotion, and the bad targets.
 */
import assert from "node:assert/strict";
import { ok } from "./support/control.ts";
import { freshBucket, s3Env } from "./support/s3.ts";
import { waitDrained } from "./support/wal.ts";
import {
  beyondPgCommand,
  cleanup,
  cliAs,
  type Instance,
  psql,
  startSupervisor,
} from "./support/harness.ts";
import { PROMOTED, READY, restoreOnce, restoreServed } from "./support/restore.ts";

interface Batch {
  k: number;
  time: string;
  lsn: string;
}

async function insertBatches(pg: Instance, ks: number[]): Promise<Batch[]> {
  const out: Batch[] = [];
  for (const k of ks) {
    await psql(pg.directPort, `insert into t select ${k}, g from generate_series(1, 100) g`, {
      password: pg.password,
    });
    const [time, lsn] = (await psql(
      pg.directPort,
      "select clock_timestamp()::text || '|' || pg_current_wal_lsn()::text",
      { password: pg.password },
    )).split("|");
    out.push({ k, time: time!, lsn: lsn! });
    await new Promise((r) => setTimeout(r, 30));
  }
  return out;
}

async function counts(pg: Instance): Promise<string> {
  return await psql(
    pg.directPort,
    "select string_agg(k || ':' || n, ',' order by k) from (select k, count(*) n from t group by k) s",
    { password: pg.password },
  );
}

Deno.test("PITR: restores to several times and LSNs have exactly the rows committed before each; --latest follows the primary, not a test restore", async () => {
  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  const restored: Instance[] = [];
  try {
    await origin.waitFor(READY, 60_000);
    const pw = { password: origin.password };
    await psql(origin.directPort, "create table t (k int, i int)", pw);
    await insertBatches(origin, [0]);
    // The control RPC's backup (pg_basebackup streamed to S3).
    const backup = await ok<{ label: string; stop_lsn: string; bytes: number }>(
      origin,
      "backup",
      { label: "first" },
    );
    assert.equal(backup.label, "first");
    const batches = await insertBatches(origin, [1, 2, 3, 4]);
    await waitDrained(origin, 60_000);

    // The CLI lists it.
    const list = await new Deno.Command(beyondPgCommand(["backups", "list", "--json"]).cmd, {
      args: beyondPgCommand(["backups", "list", "--json"]).args,
      env: origin.env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(JSON.parse(new TextDecoder().decode(list.stdout))[0].label, "first");

    const expect = (k: number) => Array.from({ length: k + 1 }, (_, i) => `${i}:100`).join(",");
    for (
      const [args, k] of [
        [["--to-time", batches[0]!.time], 1],
        [["--to-lsn", batches[1]!.lsn], 2],
        [["--to-time", batches[2]!.time], 3],
      ] as const
    ) {
      const pg = await restoreServed(bucket, origin.password, [...args]);
      restored.push(pg);
      assert.equal(await counts(pg), expect(k), `restore ${args.join(" ")}`);
      await pg.stop();
    }

    // A test restore promotes to a new timeline and keeps writing: a branch. It does not
    // archive into the primary's prefix, and --latest keeps following the primary.
    const branch = await restoreServed(bucket, origin.password, ["--to-time", batches[1]!.time]);
    restored.push(branch);
    const tli = Number((await branch.waitFor(PROMOTED)).match(PROMOTED)![1]);
    assert.ok(tli >= 2);
    await insertBatches(branch, [99]);
    await psql(branch.directPort, "select pg_switch_wal()", pw);
    await branch.waitFor(/archive: not storing .*is a branch of this prefix/, 60_000);
    await branch.stop();
    await insertBatches(origin, [5]);
    await waitDrained(origin, 60_000);
    const latest = await restoreServed(bucket, origin.password, ["--latest"]);
    restored.push(latest);
    assert.equal(await counts(latest), expect(5));
    await latest.stop();

    // Told it is the new primary, a restore takes the lineage over: --latest follows it then.
    const takeover = await restoreServed(bucket, origin.password, [
      "--to-time",
      batches[1]!.time,
      "--promote-as-primary",
    ]);
    restored.push(takeover);
    await takeover.waitFor(
      /this cluster is now the primary of its prefix \(timeline \d+\)/,
      60_000,
    );
    await insertBatches(takeover, [77]);
    await waitDrained(takeover, 60_000);
    await takeover.stop();
    const latest2 = await restoreServed(bucket, origin.password, ["--latest"]);
    restored.push(latest2);
    assert.equal(await counts(latest2), "0:100,1:100,2:100,77:100");
  } finally {
    await cleanup(origin, ...restored);
  }
});

Deno.test("restore: a target before the backup, beyond the WAL, or an empty bucket → one line, data root left empty", async () => {
  const empty = await freshBucket();
  const none = await restoreOnce(empty, "pw-1", ["--latest"]);
  assert.notEqual(none.code, 0);
  assert.match(none.stderr, /no cluster has archived to s3:\/\/.*check BEYOND_PG_ARCHIVE_TARGET/);
  assert.deepEqual(none.entries, []);

  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  try {
    await origin.waitFor(READY, 60_000);
    const before = await psql(origin.directPort, "select (now() - interval '1 hour')::text", {
      password: origin.password,
    });
    const noBackups = await restoreOnce(bucket, origin.password, ["--latest"]);
    assert.match(
      noBackups.stderr,
      /there are no base backups in the archive; take one with `beyond-pg backup`/,
    );
    assert.deepEqual(noBackups.entries, []);

    await ok(origin, "backup", {});
    await waitDrained(origin, 60_000);
    const early = await restoreOnce(bucket, origin.password, ["--to-time", before]);
    assert.notEqual(early.code, 0);
    assert.match(early.stderr, /is before the oldest base backup .*choose a later --to-time/);
    assert.deepEqual(early.entries, []);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    const late = await restoreOnce(bucket, origin.password, ["--to-time", future]);
    assert.notEqual(late.code, 0);
    assert.match(
      late.stderr,
      /after the last transaction in the archived WAL .*restore with --latest, or choose an earlier target/,
    );
    assert.match(late.stderr, /is empty again/);
    assert.deepEqual(late.entries, []);
  } finally {
    await cleanup(origin);
  }
});

Deno.test("backups prune --keep: removes the oldest backups and the WAL only they needed", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  try {
    await pg.waitFor(READY, 60_000);
    for (const label of ["one", "two", "three"]) {
      await ok(pg, "backup", { label });
      await waitDrained(pg, 60_000);
    }
    const cli = async (args: string[]) => {
      const r = await cliAs(pg, ["backups", ...args]);
      return { code: r.code, out: r.stdout };
    };
    const labels = async () =>
      JSON.parse((await cli(["list", "--json"])).out).map((b: { label: string }) => b.label);
    assert.deepEqual(await labels(), ["three", "two", "one"]);
    const dry = await cli(["prune", "--keep", "2", "--dry-run"]);
    assert.match(
      dry.out,
      /would remove 1 backup\(s\) and [1-9]\d* WAL file\(s\), would abort 0 abandoned upload\(s\); kept 2/,
    );
    assert.deepEqual(await labels(), ["three", "two", "one"]);
    const real = await cli(["prune", "--keep", "2"]);
    assert.equal(real.code, 0);
    assert.deepEqual(await labels(), ["three", "two"]);
    const two = JSON.parse((await cli(["list", "--json"])).out)[1];
    const wal = (await (await import("./support/s3.ts")).s3Client(bucket).list("db/"))
      .map((o) => o.key.split("/").pop()!).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    assert.equal(
      wal[0],
      two.start_wal,
      "WAL before the oldest kept backup is gone, the rest stays",
    );
    assert.equal((await cli(["prune"])).code, 2);
  } finally {
    await cleanup(pg);
  }
});
