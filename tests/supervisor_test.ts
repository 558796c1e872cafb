/**
 * The foundation against real postgres + PgBouncer: first boot, restarts, crashes, stops,
 * bad input. Each test owns a temp data root and free ports and cleans up by PID.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  clusterState,
  killPids,
  postmasterPid,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";
import { repoRoot } from "./support/paths.ts";

const READY = /\[beyond-pg\] ready:/;

Deno.test("first boot with the real manifest: SCRAM logins on 5432 and 5433, extensions created", async () => {
  const pg = await startSupervisor({ env: { BEYOND_PG_EXTENSIONS: "" } });
  try {
    await pg.waitFor(READY, 120_000);
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
    assert.equal(await psql(pg.directPort, "select 1", { password: pg.password }), "1");
    const exts = (await psql(pg.directPort, "select extname from pg_extension order by 1", {
      password: pg.password,
    })).split("\n");
    for (const e of ["pg_stat_statements", "pg_trgm", "pg_cron"]) {
      assert.ok(exts.includes(e), `${e} missing: ${exts}`);
    }
    // Everything the manifest lists but this server lacks is a warning, not a failure.
    assert.ok(pg.lines.some((l) => /warning: extension vectorscale is not available/.test(l)));
    const phases = await pg.waitFor(/startup phases:/);
    assert.match(
      phases,
      /settings_ms=\d+ initdb_ms=\d+ config_ms=\d+ .*post_start_ms=\d+ pgbouncer_ms=\d+ total_ms=\d+/,
    );
    // pg_wal is a symlink to <root>/wal; the auth file and secrets are private.
    assert.equal(Deno.readLinkSync(`${pg.pgdata}/pg_wal`), `${pg.root}/data/wal`);
    assert.equal((Deno.statSync(`${pg.root}/run/pgbouncer/userlist.txt`).mode ?? 0) & 0o777, 0o600);
    assert.equal(await pg.stop(), 0);
    assert.equal(await clusterState(pg.pgdata), "shut down");
  } finally {
    await cleanup(pg);
  }
});

Deno.test("second boot keeps data, skips initdb and rewrites nothing unchanged", async () => {
  const first = await startSupervisor();
  try {
    await first.waitFor(READY);
    await psql(first.directPort, "create table t(x int); insert into t values (1),(2)", {
      password: first.password,
    });
    assert.equal(await first.stop(), 0);
    const second = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
    });
    try {
      await second.waitFor(READY);
      assert.equal(second.lines.some((l) => l.includes("first boot")), false);
      assert.equal(second.lines.some((l) => l.includes("configuration written")), false);
      // No initdb (it takes ~1 s here); the phase is only the check that PGDATA is complete.
      const phases = await second.waitFor(/startup phases/);
      const initdbMs = Number(phases.match(/initdb_ms=(\d+) /)?.[1]);
      assert.ok(initdbMs < 100, phases);
      assert.equal(
        await psql(second.port, "select sum(x) from t", { password: second.password }),
        "3",
      );
      assert.equal(await second.stop(), 0);
    } finally {
      await cleanup(second);
    }
  } finally {
    await cleanup(first);
  }
});

Deno.test("a changed password applies to an existing volume; the old one stops working", async () => {
  const first = await startSupervisor({ password: "old-password" });
  try {
    await first.waitFor(READY);
    assert.equal(await first.stop(), 0);
    const second = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
      password: "new-password",
    });
    try {
      await second.waitFor(READY);
      assert.ok(second.lines.some((l) => l.includes("post-start: password set")));
      assert.equal(await psql(second.port, "select 1", { password: "new-password" }), "1");
      assert.equal(await psql(second.directPort, "select 1", { password: "new-password" }), "1");
      await assert.rejects(
        psql(second.port, "select 1", { password: "old-password" }),
        /SASL authentication failed|password authentication failed/,
      );
      await assert.rejects(
        psql(second.directPort, "select 1", { password: "old-password" }),
        /password authentication failed/,
      );
      // The plaintext never reached a log line.
      assert.equal(second.lines.some((l) => l.includes("new-password")), false);
    } finally {
      await cleanup(second);
    }
  } finally {
    await cleanup(first);
  }
});

Deno.test("kill -9 of postgres: restarted, committed rows intact; killed PgBouncer restarted", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    await psql(
      pg.directPort,
      "create table t(x int); insert into t select generate_series(1,1000)",
      {
        password: pg.password,
      },
    );
    const before = postmasterPid(pg.pgdata);
    Deno.kill(before, "SIGKILL");
    await pg.waitFor(/postgres is back/, 60_000);
    assert.notEqual(postmasterPid(pg.pgdata), before);
    assert.equal(await psql(pg.port, "select count(*) from t", { password: pg.password }), "1000");

    const bouncer = Number(Deno.readTextFileSync(`${pg.root}/run/pgbouncer/pgbouncer.pid`).trim());
    const mark = pg.lines.length;
    Deno.kill(bouncer, "SIGKILL");
    await pg.waitFor(/PgBouncer is back/, 30_000, mark);
    assert.equal(await psql(pg.port, "select count(*) from t", { password: pg.password }), "1000");
    assert.equal(await pg.stop(), 0);
    assert.equal(await clusterState(pg.pgdata), "shut down");
  } finally {
    await cleanup(pg);
  }
});

Deno.test("kill -9 of the supervisor at any point of first boot: the next boot completes", async () => {
  const root = await tempRoot();
  try {
    // Kill at increasing delays: before, during and after initdb, during post-start.
    for (const delay of [150, 400, 700, 1000, 1400]) {
      const pg = await startSupervisor({ root });
      await new Promise((r) => setTimeout(r, delay));
      const pids = pg.pids();
      await pg.stop("SIGKILL");
      // Its children live on, as after a crash of a real init; the next boot must cope.
      const next = await startSupervisor({ root, port: pg.port, directPort: pg.directPort });
      try {
        await next.waitFor(READY, 60_000);
        assert.equal(await psql(next.port, "select 1", { password: next.password }), "1");
        assert.equal(await next.stop(), 0);
      } finally {
        killPids(pids); // any initdb still running from the killed one
        await cleanup(next, pg);
      }
      // Reset to an empty volume for the next delay.
      await Deno.remove(`${root}/data`, { recursive: true });
    }
  } finally {
    await removeRoot(root);
  }
});

Deno.test("a bad 99-user.conf is moved aside, postgres starts without it, and it is reported", async () => {
  const first = await startSupervisor();
  try {
    await first.waitFor(READY);
    assert.equal(await first.stop(), 0);
    const userConf = `${first.pgdata}/conf.d/99-user.conf`;
    const bad = "work_mem = 'lots'\n";
    Deno.writeTextFileSync(userConf, bad);
    const second = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
    });
    try {
      await second.waitFor(READY);
      const report = second.lines.find((l) =>
        l.includes("postgres cannot start with 99-user.conf")
      );
      assert.ok(report, "no report line");
      const moved = [...Deno.readDirSync(`${first.pgdata}/conf.d`)].find((e) =>
        e.name.startsWith("99-user.conf.bad-")
      );
      assert.ok(moved);
      assert.equal(Deno.readTextFileSync(`${first.pgdata}/conf.d/${moved.name}`), bad);
      await second.waitFor(/error: 99-user.conf broke startup and was moved to .*; fix it/);
      assert.equal(await psql(second.port, "select 1", { password: second.password }), "1");
    } finally {
      await cleanup(second);
    }
  } finally {
    await cleanup(first);
  }
});

Deno.test("no password: one clear line, non-zero exit, nothing created on disk", async () => {
  const pg = await startSupervisor({ password: null });
  try {
    const status = await pg.exited;
    assert.notEqual(status.code, 0);
    const out = pg.lines.filter((l) => l.trim());
    assert.deepEqual(out, [
      "beyond-pg: Cannot start: POSTGRES_PASSWORD is not set in metadata or environment; set it (or POSTGRES_PASSWORD_FILE) to a non-empty secret",
    ]);
    assert.deepEqual([...Deno.readDirSync(pg.root)], []);
  } finally {
    await cleanup(pg);
  }
});

Deno.test("a bad S3 CA file or a TLS dir that is a file: one line, exit 2, nothing created on disk", async () => {
  const files = await tempRoot("bpg-files-");
  try {
    Deno.writeTextFileSync(`${files}/ca.pem`, "not a certificate\n");
    Deno.writeTextFileSync(`${files}/tls`, "a file, not a directory\n");
    const cases: [Record<string, string>, string][] = [
      [
        {
          BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/p",
          BEYOND_PG_S3_ENDPOINT: "http://127.0.0.1:9", // never reached: the start stops first
          BEYOND_PG_S3_ACCESS_KEY: "ak",
          BEYOND_PG_S3_SECRET_KEY: "sk",
          BEYOND_PG_S3_CA_FILE: `${files}/ca.pem`,
        },
        `beyond-pg: Cannot start: BEYOND_PG_S3_CA_FILE="${files}/ca.pem" holds no PEM certificate (no -----BEGIN CERTIFICATE----- line); point it at a PEM CA certificate`,
      ],
      [
        { BEYOND_PG_TLS_DIR: `${files}/tls` },
        `beyond-pg: Cannot start: BEYOND_PG_TLS_DIR="${files}/tls" is not a directory; point it at a directory (or leave it absent)`,
      ],
    ];
    for (const [env, line] of cases) {
      const pg = await startSupervisor({ env });
      try {
        const status = await pg.exited;
        assert.equal(status.code, 2);
        assert.deepEqual(pg.lines.filter((l) => l.trim()), [line]);
        assert.deepEqual([...Deno.readDirSync(pg.root)], []);
      } finally {
        await cleanup(pg);
      }
    }
  } finally {
    await removeRoot(files);
  }
});

Deno.test("PG_VERSION of another major: refuses with a line naming pg_upgrade, data untouched", async () => {
  const root = await tempRoot();
  try {
    Deno.mkdirSync(`${root}/data/main`, { recursive: true });
    Deno.writeTextFileSync(`${root}/data/main/PG_VERSION`, "14\n");
    Deno.writeTextFileSync(`${root}/data/main/keep-me`, "data");
    const pg = await startSupervisor({ root });
    try {
      const status = await pg.exited;
      assert.equal(status.code, 2);
      assert.ok(
        pg.lines.some((l) =>
          /holds a PostgreSQL 14 cluster but this image runs PostgreSQL \d+; upgrade the data with pg_upgrade/
            .test(l)
        ),
      );
      assert.deepEqual([...Deno.readDirSync(`${root}/data/main`)].map((e) => e.name).sort(), [
        "PG_VERSION",
        "keep-me",
      ]);
    } finally {
      await cleanup(pg);
    }
  } finally {
    await removeRoot(root);
  }
});

Deno.test("a preload library that is not installed: boots with a warning", async () => {
  const root = await tempRoot();
  const manifest = `${root}/manifest.toml`;
  Deno.writeTextFileSync(
    manifest,
    Deno.readTextFileSync(`${repoRoot}/tests/support/light-extensions.toml`) +
      '\n[extensions.not_here_lib]\npreload = true\nsettings = { "not_here_lib.knob" = 1 }\n',
  );
  const pg = await startSupervisor({ root, env: { BEYOND_PG_EXTENSIONS: manifest } });
  try {
    await pg.waitFor(READY);
    assert.ok(
      pg.lines.some((l) =>
        l ===
          "[beyond-pg] warning: shared_preload_libraries: skipping not_here_lib: library not installed"
      ),
    );
    assert.ok(
      pg.lines.some((l) =>
        l ===
          "[beyond-pg] warning: extension not_here_lib is not available on this server; skipping it"
      ),
    );
    const spl = await psql(pg.directPort, "show shared_preload_libraries", {
      password: pg.password,
    });
    assert.equal(spl, "pg_stat_statements, auto_explain");
    assert.equal(await pg.stop(), 0);
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("hooks: pre-start and post-start run in order with prefixed output and no password", async () => {
  const root = await tempRoot();
  for (const stage of ["pre-start", "post-start", "pre-stop"]) {
    Deno.mkdirSync(`${root}/hooks/${stage}.d`, { recursive: true });
  }
  const hook = (path: string, body: string) => {
    Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`);
    Deno.chmodSync(path, 0o755);
  };
  hook(
    `${root}/hooks/pre-start.d/10-hello`,
    'echo "hello from $BEYOND_PG_HOOK_STAGE pw=${POSTGRES_PASSWORD:-none}"',
  );
  hook(`${root}/hooks/post-start.d/10-sql`, "psql -Atc 'select 40+2'");
  hook(`${root}/hooks/pre-stop.d/10-bye`, "echo bye");
  const pg = await startSupervisor({ root });
  try {
    await pg.waitFor(READY);
    assert.ok(
      pg.lines.includes("[beyond-pg] [hook pre-start/10-hello] hello from pre-start pw=none"),
    );
    assert.ok(pg.lines.includes("[beyond-pg] [hook post-start/10-sql] 42"));
    assert.equal(await pg.stop(), 0);
    assert.ok(pg.lines.includes("[beyond-pg] [hook pre-stop/10-bye] bye"));
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("warm boot after a reboot: PgBouncer starts beside postgres, paused; 5432 holds clients until post-start is done, then reloads a changed auth file", async () => {
  const root = await tempRoot();
  let pg = await startSupervisor({ root });
  const ports = { port: pg.port, directPort: pg.directPort, httpPort: pg.httpPort };
  try {
    await pg.waitFor(READY);
    // The app changes the role's password in SQL: the next post-start sets it back (a new
    // verifier, so PgBouncer's auth file changes under a running PgBouncer).
    await psql(pg.directPort, "alter role postgres password 'changed-in-sql'", {
      password: pg.password,
    });
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);
    // A reboot (a VM's wake): the run dir, PgBouncer's auth file with it, is gone.
    Deno.removeSync(`${root}/run`, { recursive: true });

    const marker = `${root}/post-start-done`;
    Deno.mkdirSync(`${root}/hooks/post-start.d`, { recursive: true });
    Deno.writeTextFileSync(
      `${root}/hooks/post-start.d/10-slow`,
      `#!/bin/sh\nsleep 2\ntouch ${marker}\n`,
    );
    Deno.chmodSync(`${root}/hooks/post-start.d/10-slow`, 0o755);
    pg = await startSupervisor({ root, ...ports });
    // 5432 listens before post-start is done (PgBouncer started beside postgres)...
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: pg.port })).close();
        break;
      } catch {
        assert.ok(Date.now() < deadline, "5432 never listened");
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    assert.ok(!exists(marker), "5432 listened only after post-start (not beside postgres)");
    assert.ok(!pg.lines.some((l) => READY.test(l)), "ready before post-start was done");
    // ...but a client's query waits for it (held, not refused) and is then served.
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
    assert.ok(exists(marker), "a query was served before post-start was done");
    await pg.waitFor(READY);
    assert.ok(pg.lines.some((l) => /post-start: password set/.test(l)));
    await assert.rejects(psql(pg.port, "select 1", { password: "changed-in-sql" }));
    assert.equal(await psql(pg.port, "select 2", { password: pg.password }), "2");
    assert.equal(await pg.stop(), 0);
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("a wake with nothing for post-start to do serves 5432 first and runs post-start a second later; changed inputs keep the order", async () => {
  const root = await tempRoot();
  let pg = await startSupervisor({ root });
  const ports = { port: pg.port, directPort: pg.directPort, httpPort: pg.httpPort };
  try {
    await pg.waitFor(READY);
    // What the finished post-start depended on, in PGDATA/beyond (no secret in it).
    const stamp = Deno.readTextFileSync(`${pg.pgdata}/beyond/post-start.json`);
    assert.match(stamp, /"database":"postgres"/);
    assert.ok(!stamp.includes(pg.password));
    await psql(pg.directPort, "alter role postgres password 'changed-in-sql'", {
      password: pg.password,
    });
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);

    // The wake: ready (5432 serving) without post-start in the phases; it runs after.
    pg = await startSupervisor({ root, ...ports });
    const phases = await pg.waitFor(/startup phases/);
    assert.ok(!/post_start_ms/.test(phases), phases);
    assert.ok(!pg.lines.some((l) => /post-start: password set/.test(l)), "post-start ran first");
    await pg.waitFor(/post-start ran beside the first clients: \d+ ms/);
    // It still checked the catalog: the password set in SQL is set back.
    assert.ok(pg.lines.some((l) => /post-start: password set/.test(l)));
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
    await assert.rejects(psql(pg.directPort, "select 1", { password: "changed-in-sql" }));
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);

    // Changed inputs (another app database): post-start runs before 5432 serves.
    pg = await startSupervisor({ root, ...ports, env: { POSTGRES_DATABASE: "app" } });
    await pg.waitFor(READY);
    const created = pg.lines.findIndex((l) => /post-start: database app created/.test(l));
    const ready = pg.lines.findIndex((l) => READY.test(l));
    assert.ok(created >= 0 && created < ready, pg.lines.join("\n"));
    assert.match(await pg.waitFor(/startup phases/), /post_start_ms=\d+/);
    assert.match(Deno.readTextFileSync(`${pg.pgdata}/beyond/post-start.json`), /"database":"app"/);
    assert.equal(await pg.stop(), 0);
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}
