/**
 * Base backups and point-in-time restore against real postgres and radosgw: exact row counts
 * at several times and LSNs, --latest across a promotion, and the bad targets.
 */
import assert from "node:assert/strict";
import { exists } from "../src/util/fs.ts";
import { ok } from "./support/control.ts";
import { freshBucket, s3Env } from "./support/s3.ts";
import { waitDrained } from "./support/wal.ts";
import {
  beyondPgCommand,
  cleanup,
  freePort,
  type Instance,
  instanceEnv,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;
const PROMOTED = /restored and promoted: timeline (\d+)/;

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

/** `beyond-pg restore ...` on a new data root; resolves once it has promoted (--serve). */
async function restore(bucket: string, password: string, args: string[]): Promise<Instance> {
  const pg = await startSupervisor({
    args: ["restore", ...args, "--serve"],
    env: s3Env(bucket),
    password,
  });
  await pg.waitFor(PROMOTED, 120_000);
  await pg.waitFor(READY, 30_000);
  return pg;
}

async function counts(pg: Instance): Promise<string> {
  return await psql(
    pg.directPort,
    "select string_agg(k || ':' || n, ',' order by k) from (select k, count(*) n from t group by k) s",
    { password: pg.password },
  );
}

async function restoreOnce(bucket: string, password: string, args: string[]) {
  const root = await tempRoot();
  const env = instanceEnv(root, {
    port: freePort(),
    directPort: freePort(),
    httpPort: freePort(),
    password,
  });
  const c = beyondPgCommand(["restore", ...args]);
  const out = await new Deno.Command(c.cmd, {
    args: c.args,
    env: { ...env, ...s3Env(bucket) },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  // A restore that stops before taking the data root never creates it: nothing left there.
  const entries = exists(`${root}/data`)
    ? [...Deno.readDirSync(`${root}/data`)].map((e) => e.name).filter((n) =>
      n !== ".beyond-pg.lock"
    )
    : [];
  await removeRoot(root);
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr), entries };
}

Deno.test("PITR: restores to several times and LSNs have exactly the rows committed before each; --latest follows a promotion", async () => {
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
      const pg = await restore(bucket, origin.password, [...args]);
      restored.push(pg);
      assert.equal(await counts(pg), expect(k), `restore ${args.join(" ")}`);
      await pg.stop();
    }

    // A restore that promoted to a new timeline and kept writing; then --latest follows it.
    const branch = await restore(bucket, origin.password, ["--to-time", batches[1]!.time]);
    restored.push(branch);
    const tli = Number((await branch.waitFor(PROMOTED)).match(PROMOTED)![1]);
    assert.ok(tli >= 2);
    await insertBatches(branch, [99]);
    await waitDrained(branch, 60_000);
    await branch.stop();
    const latest = await restore(bucket, origin.password, ["--latest"]);
    restored.push(latest);
    assert.equal(await counts(latest), "0:100,1:100,2:100,99:100");
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
      /beyond the end of the archived WAL; choose an earlier target, or --latest/,
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
      const c = beyondPgCommand(["backups", ...args]);
      const out = await new Deno.Command(c.cmd, {
        args: c.args,
        env: pg.env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      return { code: out.code, out: new TextDecoder().decode(out.stdout) };
    };
    const labels = async () =>
      JSON.parse((await cli(["list", "--json"])).out).map((b: { label: string }) => b.label);
    assert.deepEqual(await labels(), ["three", "two", "one"]);
    const dry = await cli(["prune", "--keep", "2", "--dry-run"]);
    assert.match(dry.out, /would remove 1 backup\(s\) and [1-9]\d* WAL file\(s\); kept 2/);
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
