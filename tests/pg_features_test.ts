/**
 * What the major version and PgBouncer version change, proven on whichever this lane runs
 * (the host: PostgreSQL 15 + PgBouncer 1.18; the pg18 lane: 18 + 1.26, see scripts/lane.sh):
 * protocol-level prepared statements through 5432 from real drivers, the extensions a user
 * picks the image for, and PostgreSQL 18's changed defaults handled on purpose. In the pg18
 * lane every extension the manifest gives Debian testing must be there (no silent skip).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import pg from "pg";
import {
  cleanup,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;
const LANE = Deno.env.get("BEYOND_TEST_LANE") ?? "host";

async function pgbouncerVersion(): Promise<[number, number]> {
  const out = await new Deno.Command("pgbouncer", { args: ["--version"], stdout: "piped" })
    .output();
  const m = new TextDecoder().decode(out.stdout).match(/PgBouncer (\d+)\.(\d+)/);
  assert.ok(m, "pgbouncer --version");
  return [Number(m[1]), Number(m[2])];
}

const atLeast = (v: [number, number], major: number, minor: number) =>
  v[0] > major || (v[0] === major && v[1] >= minor);

async function sql(p: Instance, text: string, port = p.directPort): Promise<string> {
  return await psql(port, text, { password: p.password });
}

async function pgbench(p: Instance, port: number, args: string[]): Promise<string> {
  const out = await new Deno.Command("pgbench", {
    args: ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", ...args, "postgres"],
    env: { PGPASSWORD: p.password },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.ok(out.success, text);
  return text;
}

Deno.test("prepared statements through 5432: node-postgres named queries, postgres.js prepare, pgbench -M prepared (PgBouncer ≥ 1.21; the README's advice before)", async () => {
  const bouncer = await pgbouncerVersion();
  const supported = atLeast(bouncer, 1, 21);
  const p = await startSupervisor();
  try {
    await p.waitFor(READY, 120_000);
    const ini = Deno.readTextFileSync(`${p.root}/run/pgbouncer/pgbouncer.ini`);
    if (supported) assert.match(ini, /^max_prepared_statements = 200$/m);
    else {
      assert.doesNotMatch(ini, /max_prepared_statements/);
      assert.ok(
        p.lines.some((l) => /skipping max_prepared_statements: needs PgBouncer 1\.21/.test(l)),
      );
    }
    await sql(p, "create table hits (id int, by text)");
    const port = supported ? p.port : p.directPort; // 1.18: prepared statements go to 5433

    // node-postgres: named (protocol-level) prepared statements, 8 clients × 40 transactions,
    // so several pooled server connections see statements they were not prepared on.
    const pool = new pg.Pool({
      host: "127.0.0.1",
      port,
      user: "postgres",
      password: p.password,
      database: "postgres",
      max: 8,
    });
    try {
      await Promise.all(Array.from({ length: 8 }, async (_, c) => {
        for (let i = 0; i < 40; i++) {
          const client = await pool.connect();
          try {
            await client.query("begin");
            const r = await client.query({
              name: "plus-one",
              text: "select $1::int + 1 as n",
              values: [i],
            });
            assert.equal(r.rows[0].n, i + 1);
            await client.query({
              name: "insert-hit",
              text: "insert into hits values ($1, $2)",
              values: [c * 1000 + i, "node-postgres"],
            });
            await client.query("commit");
          } finally {
            client.release();
          }
        }
      }));
    } finally {
      await pool.end();
    }

    // postgres.js with its default prepare: true (on 1.18 the README says prepare: false).
    const js = postgres({
      host: "127.0.0.1",
      port: p.port,
      user: "postgres",
      password: p.password,
      database: "postgres",
      max: 8,
      prepare: supported,
    });
    try {
      await Promise.all(Array.from({ length: 8 }, async (_, c) => {
        for (let i = 0; i < 40; i++) {
          await js.begin(async (tx) => {
            const [row] = await tx`select ${i}::int * 2 as n`;
            assert.equal(row!.n, i * 2);
            await tx`insert into hits values (${c * 1000 + i}, ${"postgres.js"})`;
          });
        }
      }));
    } finally {
      await js.end();
    }

    // pgbench: -M prepared through 5432 with 4 clients (5433 on 1.18, -M simple through 5432).
    await pgbench(p, p.directPort, ["-i", "-q", "-s", "1"]);
    const out = await pgbench(p, port, ["-M", "prepared", "-c", "4", "-j", "2", "-t", "100"]);
    assert.match(out, /number of failed transactions: 0/);
    if (!supported) await pgbench(p, p.port, ["-M", "simple", "-c", "4", "-j", "2", "-t", "50"]);

    const counts = await sql(p, "select by || '=' || count(*) from hits group by by order by by");
    assert.equal(counts, "node-postgres=320\npostgres.js=320");
    console.log(
      `PgBouncer ${bouncer.join(".")}: named prepared statements through ${
        supported ? "5432 (transaction pooling)" : "5433 (PgBouncer < 1.21)"
      }: 320 + 320 transactions and pgbench -M prepared 400, 0 failed`,
    );
  } finally {
    await cleanup(p);
  }
});

/** Every extension the manifest gives this lane, and what to run with each. */
const EXTENSION_CHECKS: Record<string, (p: Instance) => Promise<void>> = {
  async vector(p) {
    await sql(
      p,
      "create table items (id int primary key, embedding vector(3)); " +
        "insert into items select i, array[i % 7, i % 11, i % 13]::real[]::vector from generate_series(1, 2000) i; " +
        "create index on items using hnsw (embedding vector_l2_ops)",
    );
    const plan = await sql(
      p,
      "set enable_seqscan = off; explain (costs off) select id from items order by embedding <-> '[1,1,1]' limit 3",
    );
    assert.match(plan, /Index Scan using items_embedding_idx/);
    const nearest = await sql(
      p,
      "set enable_seqscan = off; select embedding::text from items order by embedding <-> '[1,1,1]' limit 1",
    );
    assert.equal(nearest, "[1,1,1]");
  },
  async pg_cron(p) {
    const version = await sql(p, "select extversion from pg_extension where extname = 'pg_cron'");
    await sql(p, "create table cron_hits (at timestamptz default now())");
    const [major, minor] = version.split(".").map((n) => parseInt(n, 10));
    if (major === 1 && minor! < 5) {
      // Before 1.5 the finest schedule is a minute: scheduled, not waited for.
      await sql(
        p,
        "select cron.schedule('hit', '* * * * *', 'insert into cron_hits default values')",
      );
      assert.equal(await sql(p, "select count(*) from cron.job where jobname = 'hit'"), "1");
      console.log(`pg_cron ${version}: minute schedules only; the job is scheduled, not awaited`);
      return;
    }
    await sql(
      p,
      "select cron.schedule('hit', '1 seconds', 'insert into cron_hits default values')",
    );
    const end = Date.now() + 30_000;
    while (Number(await sql(p, "select count(*) from cron_hits")) === 0) {
      assert.ok(Date.now() < end, "the pg_cron job never fired");
      await new Promise((r) => setTimeout(r, 300));
    }
    await sql(p, "select cron.unschedule('hit')");
  },
  async postgis(p) {
    const km = Number(
      await sql(
        p,
        "select round(ST_Distance('SRID=4326;POINT(-0.1276 51.5072)'::geography, " +
          "'SRID=4326;POINT(2.3522 48.8566)'::geography) / 1000)",
      ),
    );
    assert.ok(km > 340 && km < 347, `London–Paris ${km} km`);
  },
  async pg_partman(p) {
    const [schema, version] = (await sql(
      p,
      "select n.nspname || ' ' || e.extversion from pg_extension e join pg_namespace n on n.oid = e.extnamespace where extname = 'pg_partman'",
    )).split(" ");
    await sql(
      p,
      "create table events (id bigint, at timestamptz not null) partition by range (at)",
    );
    await sql(
      p,
      Number(version!.split(".")[0]) >= 5
        ? `select ${schema}.create_parent('public.events', 'at', '1 day')`
        : `select ${schema}.create_parent('public.events', 'at', 'native', 'daily')`,
    );
    const parts = Number(
      await sql(p, "select count(*) from pg_inherits where inhparent = 'public.events'::regclass"),
    );
    assert.ok(parts >= 2, `${parts} partitions`);
    await sql(p, "insert into events values (1, now())");
  },
};

/** What conf/extensions.toml gives Debian testing (the pg18 lane): all must be there. */
const PG18_LANE_HAS = ["vector", "pg_cron", "postgis", "pg_partman", "hypopg", "pg_repack"];

Deno.test("extensions for real: pgvector HNSW, a pg_cron job that fires, a PostGIS distance, a partman parent", async () => {
  const p = await startSupervisor({ env: { BEYOND_PG_EXTENSIONS: "" } });
  try {
    await p.waitFor(READY, 180_000);
    const created = new Set(
      (await sql(p, "select extname from pg_extension")).split("\n").filter(Boolean),
    );
    if (LANE === "pg18") {
      for (const e of PG18_LANE_HAS) assert.ok(created.has(e), `${e} not created: ${[...created]}`);
    }
    const ran: string[] = [];
    for (const [ext, check] of Object.entries(EXTENSION_CHECKS)) {
      if (!created.has(ext)) {
        assert.ok(
          p.lines.some((l) => new RegExp(`warning: extension ${ext} is not available`).test(l)),
          `${ext}: neither created nor warned about`,
        );
        console.log(`${ext}: not in this lane's packages (warned at boot), skipped`);
        continue;
      }
      await check(p);
      ran.push(ext);
    }
    console.log(`lane ${LANE}: ran ${ran.join(", ")}`);
  } finally {
    await cleanup(p);
  }
});

Deno.test("major-version defaults handled on purpose: io_method, checksums, SCRAM only, log_connections", async () => {
  const p = await startSupervisor();
  try {
    await p.waitFor(READY, 120_000);
    const major = Math.floor(Number(await sql(p, "show server_version_num")) / 10000);
    assert.equal(await sql(p, "show data_checksums"), "on");
    assert.equal(await sql(p, "show password_encryption"), "scram-sha-256");
    assert.equal(await sql(p, "show log_connections"), major >= 18 ? "on" : "on");
    if (major >= 18) {
      assert.equal(await sql(p, "show io_method"), "worker");
      assert.equal(await sql(p, "show io_workers"), "3"); // clamp(vcpus = 2, 3, 8)
    }
    // A setting meant for a newer major is not a warning on an older one.
    assert.ok(!p.lines.some((l) => /skipping io_(method|workers)/.test(l)), "io_* warning");
    // No md5 anywhere: no verifier in pg_authid is md5, so PG 18 has nothing to warn about.
    assert.equal(
      await sql(p, "select count(*) from pg_authid where rolpassword like 'md5%'"),
      "0",
    );
  } finally {
    await cleanup(p);
  }
});

Deno.test("extension upgrade path: a volume with an older extension version is updated at the next boot", async () => {
  const root = await tempRoot();
  try {
    let p = await startSupervisor({ root });
    try {
      await p.waitFor(READY, 120_000);
      // What a volume made by an older image looks like: pg_trgm at an older version.
      await sql(p, "drop extension if exists pg_trgm; create extension pg_trgm version '1.4'");
      assert.equal(
        await sql(p, "select extversion from pg_extension where extname = 'pg_trgm'"),
        "1.4",
      );
      assert.equal(await p.stop(), 0);
      // ...and an older image's post-start left another stamp (its version, its extension
      // files): without it, this boot's post-start runs before 5432 serves.
      Deno.removeSync(`${p.pgdata}/beyond/post-start.json`);
    } finally {
      await cleanup(p);
    }
    p = await startSupervisor({ root });
    try {
      await p.waitFor(READY, 120_000);
      const latest = await sql(
        p,
        "select default_version from pg_available_extensions where name = 'pg_trgm'",
      );
      assert.equal(
        await sql(p, "select extversion from pg_extension where extname = 'pg_trgm'"),
        latest,
      );
      assert.ok(
        p.lines.some((l) => new RegExp(`extensions updated: .*pg_trgm 1\\.4→${latest}`).test(l)),
        "the update is reported",
      );
      assert.equal(await sql(p, "select similarity('beyond', 'beyonder') > 0.5"), "t");
    } finally {
      await cleanup(p);
    }
  } finally {
    await removeRoot(root);
  }
});
