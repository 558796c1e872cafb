/**
 * The root/postgres trust boundary, attacked the way the app can: a SQL superuser session runs
 * shell commands as the postgres OS user (COPY … TO PROGRAM) and plants links and files
 * wherever postgres can write, then waits for root (the supervisor) to act on them. Every
 * attack must leave a root-only victim file untouched, and the supervisor says so in one line.
 * Real supervisor, postgres, PgBouncer and radosgw.
 */
import assert from "node:assert/strict";
import { ControlClient } from "../src/rpc/client.ts";
import { ok } from "./support/control.ts";
import { asPostgres, victim } from "./support/attacker.ts";
import { freshBucket, RGW_HTTP, s3Client, s3Env, SECRET_KEY } from "./support/s3.ts";
import {
  beyondPgCommand,
  cleanup,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;

async function sql(pg: Instance, text: string): Promise<string> {
  return await psql(pg.directPort, text, { password: pg.password });
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("boundary: links planted in PGDATA/beyond (key, key renewal) are never followed by root", async () => {
  const v = victim();
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    // 1. Key renewal through a planted server.key.new: the sentinel (postgres's to rewrite)
    //    claims our certificate expires now; a link waits where the new key is written.
    const renew = await asPostgres(
      pg,
      `set -e; cd beyond; ln -s ${v.file} server.key.new; ln -s ${v.file} server.crt.new
       sha=$(sha256sum server.crt | cut -d" " -f1)
       printf '{"sha256":"%s","fingerprint":"x","notAfter":"2000-01-01T00:00:00.000Z"}' "$sha" > .generated.json
       touch server.crt`,
    );
    assert.ok(renew.ok, renew.error);
    await pg.waitFor(/TLS: now using the self-signed certificate/, 30_000);
    v.check();
    assert.equal(Deno.statSync(`${pg.pgdata}/beyond/server.key`).uid, postgresUid());
    // 2. The key itself replaced by a link (and the sentinel removed: "not ours").
    const swap = await asPostgres(
      pg,
      `set -e; cd beyond; rm -f server.key .generated.json; ln -s ${v.file} server.key; touch server.crt`,
    );
    assert.ok(swap.ok, swap.error);
    const line = await pg.waitFor(/must be a file owned by the postgres user/, 30_000);
    assert.match(line, /keeping the certificate in use/);
    v.check();
    // Still serving, with the certificate it had.
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");
  } finally {
    await cleanup(pg);
    v.remove();
  }
});

Deno.test("boundary: conf.d, 99-user.conf and the data root as links: root writes and chowns nothing there", async () => {
  const v = victim();
  const root = await tempRoot();
  let pg = await startSupervisor({ root });
  try {
    await pg.waitFor(READY);
    // 99-user.conf → a root-only file: postgres cannot read it, the file is moved aside (the
    // link, not its target) and postgres starts without it.
    assert.ok(
      (await asPostgres(pg, `set -e; rm conf.d/99-user.conf; ln -s ${v.file} conf.d/99-user.conf`))
        .ok,
    );
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);
    pg = await startSupervisor({ root, port: pg.port, directPort: pg.directPort });
    await pg.waitFor(/postgres cannot start with 99-user\.conf/, 60_000);
    await pg.waitFor(READY, 60_000);
    v.check();
    assert.ok(Deno.lstatSync(`${pg.pgdata}/conf.d/99-user.conf`).isFile);

    // conf.d → a root-only directory: the boot refuses with one line, and writes nothing there.
    assert.ok((await asPostgres(pg, `set -e; mv conf.d conf.d.moved; ln -s ${v.dir} conf.d`)).ok);
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);
    pg = await startSupervisor({ root, port: pg.port, directPort: pg.directPort });
    const status = await pg.exited;
    assert.notEqual(status.code, 0);
    const said = pg.lines.filter((l) =>
      /conf\.d/.test(l) && /link|denied|not a directory/i.test(l)
    );
    assert.ok(said.length >= 1, pg.lines.join("\n"));
    v.check();
  } finally {
    await cleanup(pg);
    await removeRoot(root);
    v.remove();
  }
});

Deno.test("boundary: a data root whose parent postgres owns, replaced by a link: refused, nothing chowned", async () => {
  const v = victim();
  const root = await tempRoot();
  const parent = `${root}/pgparent`;
  Deno.mkdirSync(parent);
  Deno.chownSync(parent, postgresUid(), postgresGid());
  Deno.symlinkSync(v.dir, `${parent}/data`);
  const pg = await startSupervisor({ root, env: { BEYOND_PG_DATA_ROOT: `${parent}/data` } });
  try {
    const status = await pg.exited;
    assert.notEqual(status.code, 0);
    assert.ok(
      pg.lines.some((l) => /BEYOND_PG_DATA_ROOT=.*(link|not a directory)/.test(l)),
      pg.lines.join("\n"),
    );
    v.check();
  } finally {
    await cleanup(pg);
    await removeRoot(root);
    v.remove();
  }
});

Deno.test("boundary: hooks postgres could have planted are refused, with one line each", async () => {
  const root = await tempRoot();
  const marker = `${root}/hook-ran`;
  const hooks = `${root}/hooks`;
  Deno.mkdirSync(`${hooks}/pre-start.d`, { recursive: true });
  Deno.mkdirSync(`${hooks}/post-start.d`, { recursive: true });
  // A hook owned by postgres (in a root directory), and a directory postgres owns.
  Deno.writeTextFileSync(`${hooks}/pre-start.d/10-planted`, `#!/bin/sh\ntouch ${marker}\n`, {
    mode: 0o755,
  });
  Deno.chownSync(`${hooks}/pre-start.d/10-planted`, postgresUid(), postgresGid());
  Deno.chownSync(`${hooks}/post-start.d`, postgresUid(), postgresGid());
  Deno.writeTextFileSync(`${hooks}/post-start.d/10-planted`, `#!/bin/sh\ntouch ${marker}\n`, {
    mode: 0o755,
  });
  Deno.writeTextFileSync(`${hooks}/post-start.d/20-ok`, `#!/bin/sh\necho fine\n`, { mode: 0o755 });
  const pg = await startSupervisor({ root });
  try {
    await pg.waitFor(READY);
    assert.ok(pg.lines.some((l) => /hook pre-start\/10-planted refused: .*owned by uid/.test(l)));
    assert.ok(
      pg.lines.some((l) => /hook post-start\/10-planted refused: .*post-start\.d is owned/.test(l)),
    );
    assert.equal(Deno.statSync(root).isDirectory && !exists(marker), true, "a planted hook ran");
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("boundary: the archive — run-dir state, done markers, planted WAL links and the spool", async () => {
  const v = victim();
  const bucket = await freshBucket();
  const root = await tempRoot();
  let pg = await startSupervisor({ root, env: s3Env(bucket) });
  try {
    await pg.waitFor(READY);
    await pg.waitFor(/archiving to s3:/);
    const run = `${root}/run`;
    // Nothing in root's run dir is postgres's to change (fake "archived", rewrite the config).
    for (
      const attempt of [
        `touch ${run}/archive/done/00000001000000000000000F`,
        `ln -s ${v.file} ${run}/archive/done/000000010000000000000010`,
        `echo x > ${run}/archive/state.json`,
        `cat ${run}/private/archive.json`,
        `touch ${run}/output/x`,
        `touch ${run}/x`,
      ]
    ) {
      const r = await asPostgres(pg, attempt);
      assert.equal(r.ok, false, `postgres could: ${attempt}`);
    }
    // pg_read_file runs as postgres too: no key there.
    await assert.rejects(sql(pg, `select pg_read_file('${run}/private/archive.json')`));

    // A link planted as a segment and as a history file, and a "segment" that is not WAL, all
    // marked ready. The segment link is refused (never read); the history file of a timeline
    // that is not the prefix's lineage is not even opened (a branch's, answered as done).
    const planted = await asPostgres(
      pg,
      `set -e; ln -s ${v.file} pg_wal/0000000100000000000000AA; touch pg_wal/archive_status/0000000100000000000000AA.ready
       ln -s ${v.file} pg_wal/000000AA.history; touch pg_wal/archive_status/000000AA.history.ready
       head -c 16777216 /dev/zero > pg_wal/0000000100000000000000AB
       touch pg_wal/archive_status/0000000100000000000000AB.ready`,
    );
    assert.ok(planted.ok, planted.error);
    await pg.waitFor(/archive: 0000000100000000000000AA: .*is a link; refusing/, 30_000);
    await pg.waitFor(/refusing to archive 0000000100000000000000AB: page magic/, 30_000);
    await pg.waitFor(/not storing 000000AA\.history: timeline 170 is a branch/, 30_000);
    const client = s3Client(bucket);
    const keys = (await client.list("db/")).map((o) => o.key);
    for (
      const name of ["0000000100000000000000AA", "000000AA.history", "0000000100000000000000AB"]
    ) {
      assert.ok(!keys.some((k) => k.endsWith(`/${name}`)), `${name} was stored`);
    }
    // Let postgres's archiver go on with real WAL.
    assert.ok(
      (await asPostgres(
        pg,
        "rm -f pg_wal/0000000100000000000000AA pg_wal/archive_status/0000000100000000000000AA.* pg_wal/000000AA.history pg_wal/archive_status/000000AA.history.* pg_wal/0000000100000000000000AB pg_wal/archive_status/0000000100000000000000AB.*",
      )).ok,
    );
    v.check();

    // The restore spool: a link where the next fetched file is written, then a restore request
    // (what restore-wal sends; postgres can connect to this socket).
    const seg = await sql(pg, "select pg_walfile_name(pg_switch_wal())");
    await until(
      "the switched segment archived",
      async () => (await client.list("db/")).some((o) => o.key.endsWith(`/wal/${seg}`)),
    );
    assert.ok((await asPostgres(pg, `set -e; ln -s ${v.file} ../restore-spool/${seg}.part`)).ok);
    const sock = await ControlClient.unix(`${run}/archive/archive.sock`);
    try {
      const res = await sock.call("restore", { name: seg });
      assert.ok(res.ok, JSON.stringify(res));
      assert.equal((res.result as { found: boolean }).found, true);
    } finally {
      sock.close();
    }
    v.check();

    // Secrets: nothing postgres can read — files under the run dir and PGDATA, and the
    // environment of every process of its uid — holds the password or the S3 secret.
    const scan = await asPostgres(
      pg,
      `! grep -r -l -a -F -e '${SECRET_KEY}' -e '${pg.password}' ${run} ${root}/data /proc/[0-9]*/environ 2>/dev/null`,
    );
    assert.ok(scan.ok, `a secret is readable by postgres: ${scan.error}`);
    // ... and pg_basebackup, run for a backup, has neither in its environment.
    const seen: string[] = [];
    let scanning = true;
    const watcher = (async () => {
      while (scanning) {
        for (const e of Deno.readDirSync("/proc")) {
          if (!/^\d+$/.test(e.name)) continue;
          try {
            const env = Deno.readTextFileSync(`/proc/${e.name}/environ`);
            const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`);
            if (!cmd.includes("pg_basebackup") && !cmd.startsWith("zstd")) continue;
            seen.push(cmd.split("\0")[0]!);
            if (env.includes(SECRET_KEY) || env.includes(pg.password)) {
              seen.push(`SECRET in ${cmd}`);
            }
          } catch { /* gone */ }
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await ok(pg, "backup");
    scanning = false;
    await watcher;
    assert.ok(seen.some((c) => c.includes("pg_basebackup")), "pg_basebackup was never seen");
    assert.ok(!seen.some((c) => c.startsWith("SECRET")), seen.join("\n"));

    // Next start: the spool directory replaced by a link to a root-only directory. The
    // supervisor clears and recreates its spool as postgres: the link goes, its target stays.
    assert.equal(await pg.stop(), 0);
    await cleanup(pg);
    Deno.removeSync(`${root}/data/restore-spool`, { recursive: true });
    Deno.symlinkSync(v.dir, `${root}/data/restore-spool`);
    pg = await startSupervisor({
      root,
      env: s3Env(bucket),
      port: pg.port,
      directPort: pg.directPort,
    });
    await pg.waitFor(READY);
    assert.ok(Deno.lstatSync(`${root}/data/restore-spool`).isDirectory);
    v.check();
  } finally {
    await cleanup(pg);
    await removeRoot(root);
    v.remove();
  }
});

Deno.test("boundary: a base backup with a link in it is refused (tar runs as postgres, what it made is checked); the data root stays empty", async () => {
  const v = victim();
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  const work = await tempRoot();
  try {
    await pg.waitFor(READY);
    const m = await ok<{ label: string }>(pg, "backup");
    // Rewrite the stored backup: the same cluster plus conf.d as a link to a root-only dir.
    const client = s3Client(bucket);
    const sysid = (await sql(pg, "select system_identifier from pg_control_system()")).trim();
    const prefix = `db/pg15-${sysid}/basebackups/${m.label}`;
    const obj = await client.get(`${prefix}/base.tar.zst`, 60_000, { maxBytes: 1 << 30 });
    Deno.writeFileSync(`${work}/base.tar.zst`, obj!.body);
    await sh(
      `cd ${work} && zstd -q -d base.tar.zst -o base.tar && mkdir x && tar -xf base.tar -C x &&
      rm -rf x/conf.d && ln -s ${v.dir} x/conf.d && tar -C x -cf evil.tar . && zstd -q -1 evil.tar -o evil.tar.zst`,
    );
    const evil = Deno.readFileSync(`${work}/evil.tar.zst`);
    const manifest = JSON.parse(
      new TextDecoder().decode((await client.get(`${prefix}/manifest.json`))!.body),
    );
    manifest.bytes = Deno.statSync(`${work}/evil.tar`).size;
    manifest.stored_bytes = evil.length;
    manifest.sha256 = await sha256(evil);
    // One object, checked whole: the per-part hashes describe the old bytes.
    delete manifest.part_size;
    delete manifest.part_sha256;
    await client.put(`${prefix}/base.tar.zst`, evil);
    await client.put(`${prefix}/manifest.json`, new TextEncoder().encode(JSON.stringify(manifest)));
    await cleanup(pg);

    const target = await tempRoot();
    try {
      const { cmd, args } = beyondPgCommand(["restore", "--latest"]);
      const out = await new Deno.Command(cmd, {
        args,
        env: {
          ...s3Env(bucket),
          PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          POSTGRES_PASSWORD: "x",
          BEYOND_PG_DATA_ROOT: `${target}/data`,
          BEYOND_PG_RUN_DIR: `${target}/run`,
          BEYOND_PG_SOCKET_DIR: `${target}/sock`,
          BEYOND_PG_EXTENSIONS: `${Deno.cwd()}/tests/support/light-extensions.toml`,
          BEYOND_MMDS_URL: "off",
          BEYOND_PG_HTTP: "off",
        },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.notEqual(out.code, 0);
      assert.match(stderr, /refused: member .*conf\.d.* is a symbolic link/);
      assert.deepEqual(
        [...Deno.readDirSync(`${target}/data`)].map((e) => e.name).filter((n) =>
          !n.startsWith(".")
        ),
        [],
      );
      v.check();
    } finally {
      await removeRoot(target);
    }
  } finally {
    await cleanup(pg);
    await removeRoot(work);
    v.remove();
  }
});

async function sh(script: string): Promise<void> {
  const out = await new Deno.Command("sh", { args: ["-c", script], stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}

async function sha256(data: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function passwd(): string[] {
  return Deno.readTextFileSync("/etc/passwd").split("\n").find((l) => l.startsWith("postgres:"))!
    .split(":");
}

function postgresUid(): number {
  return Number(passwd()[2]);
}

function postgresGid(): number {
  return Number(passwd()[3]);
}

void RGW_HTTP;
