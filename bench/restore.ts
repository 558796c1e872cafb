/**
 * Issue 17 benchmark: base backup and restore rate vs `pg_basebackup` to local disk, side by
 * side in rounds on one database (pgbench -i -s BENCH_SCALE, 40 by default: ~600 MiB), against
 * the local radosgw over HTTPS. Each round: pg_basebackup (tar, uncompressed, to a local
 * directory), then `beyond-pg backup` (RPC), then `beyond-pg restore --latest` into a fresh data
 * root (its own rate line: download, verify, unpack; recovery after it is not counted). Prints
 * every round and the medians; goal: restore ≥ 1.0× pg_basebackup.
 *
 *   deno task bench restore [--runs N]     (3 rounds by default)
 */
import { ok } from "../tests/support/control.ts";
import { cleanup, psql, removeRoot, startSupervisor, tempRoot } from "../tests/support/harness.ts";
import { ensureRgw, freshBucket, RGW_DIR, RGW_HTTPS, s3Env } from "../tests/support/s3.ts";
import { binDir, emptyBuckets, median, pgbench, runsFromArgs, sh } from "./lib.ts";

const READY = /\[beyond-pg\] ready:/;
const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const SCALE = Number(Deno.env.get("BENCH_SCALE") ?? 40);
const rounds = runsFromArgs(3);
await sh(Deno.execPath(), ["task", "--quiet", "build"], {
  env: { PATH: Deno.env.get("PATH") ?? "" },
});
Deno.env.set("BEYOND_PG_TEST_BIN", `${repo}/dist/beyond-pg`);
const postgresUid = Number((await sh("id", ["-u", "postgres"])).trim());
const postgresGid = Number((await sh("id", ["-g", "postgres"])).trim());

await ensureRgw();
const bucket = await freshBucket("bench-restore");
const env = {
  ...s3Env(bucket, { endpoint: `https://127.0.0.1:${RGW_HTTPS}` }),
  BEYOND_PG_S3_CA_FILE: `${RGW_DIR}/ca.crt`,
};
const rootA = await tempRoot("bpg-bench-restore-a-");
const pg = await startSupervisor({ root: rootA, env, keepLines: /^\[beyond-pg\]/ });
const rows: { pgbb: number; backup: number; restore: number }[] = [];
try {
  await pg.waitFor(READY, 60_000);
  await pgbench(pg, ["-i", "-q", "-s", String(SCALE)]);
  await psql(pg.directPort, "checkpoint", { password: pg.password });
  const size = Number(
    await psql(pg.directPort, "select sum(pg_database_size(oid)) from pg_database", {
      password: pg.password,
    }),
  );
  console.log(
    `# restore benchmark (radosgw over HTTPS; dist/beyond-pg; databases ${
      (size / 2 ** 20).toFixed(0)
    } MiB; ${rounds} rounds)`,
  );
  for (let i = 0; i < rounds; i++) {
    const local = await tempRoot("bpg-bench-pgbb-");
    await sh("chown", ["postgres:postgres", local]);
    let t = performance.now();
    await sh(`${binDir}/pg_basebackup`, [
      "-h",
      pg.socketDir,
      "-p",
      String(pg.directPort),
      "-U",
      "postgres",
      "-D",
      `${local}/b`,
      "-F",
      "tar",
      "-X",
      "fetch",
      "-c",
      "fast",
    ], { uid: postgresUid, gid: postgresGid });
    const pgbbSeconds = (performance.now() - t) / 1000;
    const tarBytes = Number((await sh("du", ["-sb", `${local}/b`])).split(/\s/)[0]);
    await removeRoot(local);
    const pgbb = tarBytes / 2 ** 20 / pgbbSeconds;

    t = performance.now();
    const m = await ok<{ bytes: number }>(pg, "backup", { label: `bench-${i}` });
    const backup = m.bytes / 2 ** 20 / ((performance.now() - t) / 1000);

    const rootR = await tempRoot("bpg-bench-restore-r-");
    const r = await startSupervisor({
      root: rootR,
      args: ["restore", "--latest"],
      password: pg.password,
      keepLines: /^\[beyond-pg\]|restore/,
      env,
    });
    try {
      const line = await r.waitFor(/restore: [\d.]+ MiB restored in/, 600_000);
      await r.exited;
      const restore = Number(line.match(/\(([\d.]+) MiB\/s\)/)?.[1]);
      rows.push({ pgbb, backup, restore });
      console.log(
        `round ${i + 1}: pg_basebackup ${pgbb.toFixed(0)} MiB/s (tar ${
          (tarBytes / 2 ** 20).toFixed(0)
        } MiB), backup ${backup.toFixed(0)} MiB/s (${(backup / pgbb).toFixed(2)}×), restore ${
          restore.toFixed(0)
        } MiB/s (${(restore / pgbb).toFixed(2)}×)`,
      );
    } finally {
      await cleanup(r);
      await removeRoot(rootR);
    }
  }
} finally {
  await cleanup(pg);
  await removeRoot(rootA);
  await emptyBuckets([bucket]);
}
const ratio = (k: "backup" | "restore") => median(rows.map((r) => r[k] / r.pgbb));
console.log(
  `\nmedians of ${rows.length}: pg_basebackup to local disk ${
    median(rows.map((r) => r.pgbb)).toFixed(0)
  } MiB/s; beyond-pg backup → S3 ${
    ratio("backup").toFixed(2)
  }×; restore ← S3 (download, verify, unpack) ${ratio("restore").toFixed(2)}× (goal ≥ 1.0: ${
    ratio("restore") >= 1 ? "PASS" : "FAIL"
  }); restore rounds ${rows.map((r) => (r.restore / r.pgbb).toFixed(2)).join(" ")}`,
);
