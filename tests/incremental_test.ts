/**
 * Incremental base backups (issue 17), against real postgres and radosgw. On PostgreSQL 17 and
 * later (the PG 18 lane: `scripts/lane.sh run pg18 -- deno test -A tests/incremental_test.ts`):
 * a full backup, two incrementals after ~5% of the pages changed, a restore from the last one
 * (pg_combinebackup) exact to the row, and a prune that keeps the chain. On 15/16:
 * `--incremental` takes a full backup with one warning.
 */
import assert from "node:assert/strict";
import { ok } from "./support/control.ts";
import { waitDrained } from "./support/wal.ts";
import { cleanup, cliAs, type Instance, psql, startSupervisor } from "./support/harness.ts";
import { freshBucket, PROMOTED, READY, s3Env } from "./support/restore.ts";

interface Manifest {
  label: string;
  kind?: string;
  parent?: string;
  pg_manifest?: string;
  note?: string;
  bytes: number;
  stored_bytes: number;
  duration_ms: number;
}

async function sql(pg: Instance, text: string): Promise<string> {
  return await psql(pg.directPort, text, { password: pg.password });
}

const cli = cliAs;

const DIGEST = "select count(*) || ':' || md5(string_agg(i || '=' || t, ',' order by i)) from big";

Deno.test("backup --incremental: on PostgreSQL 17+ a chain restores exact to the row and prune keeps it; before 17 a full backup, one warning", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  const served: Instance[] = [];
  try {
    await pg.waitFor(READY, 60_000);
    const major = Number(
      await sql(pg, "select current_setting('server_version_num')::int / 10000"),
    );
    await sql(
      pg,
      "create table big (i int primary key, t text) with (fillfactor = 100); insert into big select g, md5(g::text) from generate_series(1, 400000) g",
    );

    if (major < 17) {
      assert.equal(
        await sql(pg, "select count(*) from pg_settings where name = 'summarize_wal'"),
        "0",
      );
      const m = await ok<Manifest>(pg, "backup", { label: "asked-incremental", incremental: true });
      assert.equal(m.kind, undefined);
      assert.equal(m.parent, undefined);
      assert.equal(
        m.note,
        `incremental backups need PostgreSQL 17 or later (this is PostgreSQL ${major}): a full backup is taken instead`,
      );
      await pg.waitFor(/warning: backup: incremental backups need PostgreSQL 17 or later/);
      const viaCli = await cli(pg, ["backup", "--incremental", "--label", "cli", "--json"]);
      assert.equal(viaCli.code, 0, viaCli.stderr);
      const warnings = viaCli.stderr.trim().split("\n").filter((l) => /warning/.test(l));
      assert.deepEqual(warnings, [
        `[beyond-pg] warning: backup: incremental backups need PostgreSQL 17 or later (this is PostgreSQL ${major}): a full backup is taken instead`,
      ]);
      return;
    }

    assert.equal(await sql(pg, "show summarize_wal"), "on");
    // Hint bits first: with data checksums the first scan after the load would rewrite (and
    // WAL-log) every page, and an incremental after it would hold the whole table again.
    await sql(pg, "vacuum (freeze) big");
    await sql(pg, "checkpoint");
    const full = await ok<Manifest>(pg, "backup", { label: "full" });
    assert.equal(full.kind, "full");
    assert.equal(full.pg_manifest, "backup_manifest");

    // About 5% of the table's pages: every 20th page's rows (~ 35 rows a page, by ctid).
    const change = async (tag: string) => {
      await sql(
        pg,
        `update big set t = '${tag}' || i where (ctid::text::point)[0]::int % 20 = 0`,
      );
      await sql(pg, "checkpoint");
    };
    await change("a");
    const i1 = await ok<Manifest>(pg, "backup", { label: "i1", incremental: true });
    assert.equal(i1.kind, "incremental");
    assert.equal(i1.parent, "full");
    await change("b");
    await sql(pg, "insert into big select g, 'late' from generate_series(400001, 400100) g");
    const i2 = await ok<Manifest>(pg, "backup", { label: "i2", incremental: true });
    assert.equal(i2.parent, "i1");
    await sql(pg, "insert into big select g, 'after' from generate_series(400101, 400200) g");
    await waitDrained(pg, 60_000);
    const want = await sql(pg, DIGEST);
    console.log(
      `  full: ${(full.stored_bytes / 2 ** 20).toFixed(1)} MiB stored in ${full.duration_ms} ms; ` +
        `incremental after ~5% of pages changed: ${
          (i1.stored_bytes / 2 ** 20).toFixed(1)
        } MiB in ${i1.duration_ms} ms (${(i1.stored_bytes / full.stored_bytes).toFixed(3)}× size, ${
          (i1.duration_ms / full.duration_ms).toFixed(2)
        }× time)`,
    );
    assert.ok(i1.stored_bytes < full.stored_bytes / 2, "an incremental holds what changed");

    // Restore from the newest: full + i1 + i2 combined, then WAL to the end.
    const restored = await startSupervisor({
      args: ["restore", "--latest", "--serve"],
      password: pg.password,
      env: s3Env(bucket),
    });
    served.push(restored);
    await restored.waitFor(/restore: base backup i2 .*\(incremental: full, i1, i2\)/, 60_000);
    await restored.waitFor(PROMOTED, 180_000);
    await restored.waitFor(READY, 60_000);
    assert.equal(await sql(restored, DIGEST), want, "exact to the row");
    await restored.stop();

    // Prune keeps what the newest builds on, however many are asked to go.
    const prune = await cli(pg, ["backups", "prune", "--keep", "1"]);
    assert.equal(prune.code, 0, prune.stderr);
    const labels = JSON.parse((await cli(pg, ["backups", "list", "--json"])).stdout)
      .map((b: Manifest) => b.label).sort();
    assert.deepEqual(labels, ["full", "i1", "i2"]);
    assert.equal((await cli(pg, ["verify"])).code, 0);
  } finally {
    await cleanup(pg, ...served);
  }
});
