/**
 * The seed: a prepared cluster first boot copies instead of running initdb. Two copies must be
 * two databases (distinct system identifiers), and a damaged seed must never be used.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  deno,
  mainTs,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;

async function buildSeed(seedDir: string, root: string): Promise<void> {
  const out = await new Deno.Command(deno, {
    args: ["run", "-A", "--quiet", mainTs, "seed"],
    env: {
      BEYOND_PG_SEED_DIR: seedDir,
      BEYOND_PG_DATA_ROOT: `${root}/unused`,
      BEYOND_PG_RUN_DIR: `${root}/run`,
      BEYOND_PG_SOCKET_DIR: `${root}/sock`,
      BEYOND_MMDS_URL: "off",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

async function sysid(port: number, password: string): Promise<string> {
  return await psql(port, "select system_identifier from pg_control_system()", { password });
}

Deno.test("first boot from the seed: distinct system identifiers, password, extensions, no CREATE", async () => {
  const root = await tempRoot();
  try {
    await buildSeed(`${root}/seed`, root);
    const ids: string[] = [];
    for (const name of ["a", "b"]) {
      Deno.mkdirSync(`${root}/${name}`, { mode: 0o755 });
      const pg = await startSupervisor({
        root: `${root}/${name}`,
        env: { BEYOND_PG_SEED_DIR: `${root}/seed`, BEYOND_PG_EXTENSIONS: "" },
      });
      try {
        await pg.waitFor(READY, 60_000);
        assert.ok(pg.lines.some((l) => l.includes("from the seed in")));
        assert.equal(pg.lines.some((l) => l.includes("extensions created")), false);
        assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
        const exts = await psql(
          pg.directPort,
          "select string_agg(extname, ',' order by extname) from pg_extension",
          {
            password: pg.password,
          },
        );
        assert.match(exts, /pg_cron/);
        assert.match(exts, /pg_stat_statements/);
        assert.equal(
          await psql(pg.directPort, "show data_checksums", { password: pg.password }),
          "on",
        );
        ids.push(await sysid(pg.directPort, pg.password));
        await psql(pg.directPort, "create table t as select 1 as x", { password: pg.password });
        assert.equal(await pg.stop(), 0);
      } finally {
        await cleanup(pg);
      }
    }
    assert.equal(ids.length, 2);
    assert.notEqual(ids[0], ids[1]);
  } finally {
    await removeRoot(root);
  }
});

Deno.test("a damaged seed is not used: warning, then initdb", async () => {
  const root = await tempRoot();
  try {
    await buildSeed(`${root}/seed`, root);
    const major = [...Deno.readDirSync(`${root}/seed`)].find((e) => /^\d+$/.test(e.name))!.name;
    const path = `${root}/seed/${major}/data/global/pg_control`;
    const bytes = Deno.readFileSync(path);
    bytes[40] = bytes[40]! ^ 0xff; // break the CRC
    Deno.writeFileSync(path, bytes);
    Deno.mkdirSync(`${root}/x`, { mode: 0o755 });
    const pg = await startSupervisor({
      root: `${root}/x`,
      env: { BEYOND_PG_SEED_DIR: `${root}/seed`, BEYOND_PG_EXTENSIONS: "" },
    });
    try {
      await pg.waitFor(READY, 60_000);
      assert.ok(
        pg.lines.some((l) => /warning: seed .* not used \(.*\); running initdb instead/.test(l)),
      );
      assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
      assert.equal(await pg.stop(), 0);
    } finally {
      await cleanup(pg);
    }
  } finally {
    await removeRoot(root);
  }
});
