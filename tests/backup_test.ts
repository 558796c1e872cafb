/**
 * Backups users can trust (issue 17), against real postgres and radosgw: `verify` proves the
 * archive restorable and names the first problem (a deleted segment, a corrupted backup, a
 * corrupted WAL object); prune aborts multipart uploads left behind.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { control, ok } from "./support/control.ts";
import { RGW_HTTP, s3Client } from "./support/s3.ts";
import { FaultProxy } from "./support/proxy.ts";
import { waitDrained } from "./support/wal.ts";
import {
  cleanup,
  cliAs,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";
import { freshBucket, PROMOTED, READY, s3Env } from "./support/restore.ts";

async function sql(pg: Instance, text: string): Promise<string> {
  return await psql(pg.directPort, text, { password: pg.password });
}

const cli = cliAs;

/** `n` rows, then a segment switch: the segment the switch completed. */
async function addRows(pg: Instance, n: number): Promise<string> {
  await sql(pg, `insert into t select g from generate_series(1, ${n}) g`);
  return await sql(pg, "select pg_walfile_name(pg_switch_wal())");
}

Deno.test("verify: a sound archive verifies (CLI, RPC, metric); a deleted segment, a corrupt WAL object and a corrupt backup are each named, exit 1", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  try {
    await pg.waitFor(READY, 60_000);
    await sql(pg, "create table t (i int)");
    const first = await ok<{ label: string }>(pg, "backup", { label: "first" });
    await addRows(pg, 100);
    const hole = await addRows(pg, 100);
    const bad = await addRows(pg, 100);
    await addRows(pg, 100);
    await ok(pg, "backup", { label: "second" });
    await addRows(pg, 100);
    await waitDrained(pg, 60_000);

    const good = await cli(pg, ["verify", "--json"]);
    assert.equal(good.code, 0, good.stderr);
    const report = JSON.parse(good.stdout);
    assert.equal(report.ok, true);
    assert.deepEqual(report.backups.map((b: { label: string }) => b.label), ["second", "first"]);
    assert.ok(report.walFilesChecked >= 6, String(report.walFilesChecked));
    const rpc = await ok<{ ok: boolean; backups: unknown[] }>(pg, "verify", {});
    assert.equal(rpc.ok, true);
    const metrics = await (await fetch(`http://127.0.0.1:${pg.httpPort}/metrics`)).text();
    const at = Number(metrics.match(/^beyond_pg_archive_verified_timestamp_seconds (\S+)$/m)?.[1]);
    assert.ok(Math.abs(at - Date.now() / 1000) < 300, `verified at ${at}`);
    console.log(
      `  sound archive: ${report.walFilesChecked} WAL files, ${report.seconds.toFixed(1)} s`,
    );

    const sysid = await sql(pg, "select system_identifier from pg_control_system()");
    const s3 = s3Client(bucket);
    const major = await sql(pg, "select current_setting('server_version_num')::int / 10000");
    const wal = (n: string) => `db/pg${major}-${sysid}/wal/${n}`;

    // A WAL object whose content is not what was stored: read back, it fails its checksum.
    const kept = (await s3.get(wal(bad), undefined, { maxBytes: 17 << 20 }))!;
    await s3.put(wal(bad), new Uint8Array(kept.body.length).fill(1), { metadata: kept.metadata });
    const corruptWal = await cli(pg, ["verify", "--backup", "first"]);
    assert.equal(corruptWal.code, 1);
    assert.match(corruptWal.stderr, new RegExp(`backup first: ${bad} in the archive is corrupt`));
    assert.match(corruptWal.stdout, /^FAILED {2}first/m);
    // The newer backup starts after it: still fine.
    assert.equal((await cli(pg, ["verify", "--backup", "second"])).code, 0);
    await s3.put(wal(bad), kept.body, { metadata: kept.metadata });

    // A backup object with one byte changed, restored: tar gets the bytes before they can be
    // checked (and fails on them), but the message is the part's SHA-256, and nothing stays.
    const key = `db/pg${major}-${sysid}/basebackups/second/base.tar.zst`;
    const original = (await s3.get(key, 60_000, { maxBytes: 1 << 30 }))!;
    const flipped = original.body.slice();
    flipped[Math.floor(flipped.length / 3)]! ^= 0x55;
    await s3.put(key, flipped, { metadata: original.metadata });
    const { restoreOnce } = await import("./support/restore.ts");
    const refused = await restoreOnce(bucket, pg.password, ["--latest"]);
    assert.notEqual(refused.code, 0);
    assert.match(
      refused.stderr,
      /backup second .*the backup is corrupt|backup second in the archive is corrupt/,
    );
    assert.deepEqual(refused.entries, []);
    await s3.put(key, original.body, { metadata: original.metadata });

    // The right bytes, but the manifest says the backup's tar stream was longer: refused, not
    // restored short (zstd says how much it unpacked).
    const manifestKey = `db/pg${major}-${sysid}/basebackups/second/manifest.json`;
    const manifestBody = (await s3.get(manifestKey))!.body;
    const longer = JSON.parse(new TextDecoder().decode(manifestBody));
    longer.bytes += 512;
    await s3.put(manifestKey, new TextEncoder().encode(JSON.stringify(longer)));
    const short = await restoreOnce(bucket, pg.password, ["--latest"]);
    assert.notEqual(short.code, 0);
    assert.match(
      short.stderr,
      new RegExp(`backup second unpacked to ${longer.bytes - 512} bytes, expected ${longer.bytes}`),
    );
    assert.deepEqual(short.entries, []);
    await s3.put(manifestKey, manifestBody);

    // A deleted segment: a hole, named, with what is still reachable.
    await s3.delete(wal(hole));
    const gap = await cli(pg, ["verify"]);
    assert.equal(gap.code, 1);
    assert.match(
      gap.stderr,
      new RegExp(
        `^beyond-pg verify: backup first: ${hole} is missing from the archive \\(\\d+ later segment\\(s\\) are there: a hole\\)`,
      ),
    );
    assert.equal(gap.stderr.trim().split("\n").length, 1, gap.stderr);

    // A corrupted backup object: its SHA-256 is not the manifest's.
    const size = (await s3.head(key))!.size;
    await s3.put(key, new Uint8Array(size).fill(7));
    const corrupt = await cli(pg, ["verify", "--backup", "second", "--json"]);
    assert.equal(corrupt.code, 1);
    const r2 = JSON.parse(corrupt.stdout);
    assert.equal(r2.backups[0].object.ok, false);
    assert.match(
      r2.problem,
      /^backup second is corrupt: base\.tar\.zst is \d+ bytes with sha256 [0-9a-f]{16}…, its manifest says \d+ bytes/,
    );
    const viaRpc = await ok<{ ok: boolean; problem: string }>(pg, "verify", { backup: "second" });
    assert.equal(viaRpc.ok, false);
    assert.match(viaRpc.problem, /backup second is corrupt/);
    assert.equal(first.label, "first");
  } finally {
    await cleanup(pg);
  }
});

Deno.test("backups prune aborts multipart uploads left behind (batched deletes)", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  try {
    await pg.waitFor(READY, 60_000);
    for (const label of ["one", "two"]) {
      await ok(pg, "backup", { label });
      await waitDrained(pg, 60_000);
    }
    const s3 = s3Client(bucket);
    const sysid = await sql(pg, "select system_identifier from pg_control_system()");
    const major = await sql(pg, "select current_setting('server_version_num')::int / 10000");
    const key = `db/pg${major}-${sysid}/basebackups/killed/base.tar.zst`;
    const id = await s3.createMultipart(key);
    await s3.uploadPart(key, id, 1, new Uint8Array(1000));
    // Younger than a day: a backup may still be running; kept.
    const young = await cli(pg, ["backups", "prune", "--keep", "1", "--dry-run"]);
    assert.match(young.stdout, /would abort 0 abandoned upload\(s\)/);
    const r = await cli(pg, ["backups", "prune", "--keep", "1", "--abandoned-after", "0s"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`aborted an upload left behind: ${key} \\(started `));
    assert.match(
      r.stdout,
      /removed 1 backup\(s\) and \d+ WAL file\(s\), aborted 1 abandoned upload\(s\); kept 1/,
    );
    assert.deepEqual(await s3.listMultipartUploads("db/"), []);
    assert.deepEqual(
      JSON.parse((await cli(pg, ["backups", "list", "--json"])).stdout).map((
        b: { label: string },
      ) => b.label),
      ["two"],
    );
  } finally {
    await cleanup(pg);
  }
});

Deno.test("restore: a store that stalls and resets mid-download is resumed by range, and the restore is exact", async () => {
  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  const proxy = new FaultProxy(RGW_HTTP);
  let restored: Instance | undefined;
  try {
    await origin.waitFor(READY, 60_000);
    await sql(
      origin,
      "create table big as select i, md5(i::text) || md5((i * 7)::text) as t from generate_series(1, 600000) i",
    );
    const m = await ok<{ stored_bytes: number; parts: number; part_sha256: string[] }>(
      origin,
      "backup",
      { label: "b" },
    );
    assert.equal(m.part_sha256.length, m.parts);
    await sql(origin, "insert into big select i, 'after' from generate_series(600001, 600100) i");
    await waitDrained(origin, 60_000);
    const digest = "select count(*) || ':' || md5(string_agg(t, ',' order by i)) from big";
    const want = await sql(origin, digest);

    // 4 MB/s down; once 30% is through, no byte moves for 5 s (idle timeout 2 s), then a reset.
    proxy.throttleDown = 4 << 20;
    restored = await startSupervisor({
      args: ["restore", "--latest", "--serve"],
      password: origin.password,
      env: {
        ...s3Env(bucket, { endpoint: `http://127.0.0.1:${proxy.port}` }),
        BEYOND_PG_S3_IDLE_TIMEOUT: "2",
      },
    });
    proxy.received = 0;
    while (proxy.received < m.stored_bytes * 0.3) await new Promise((r) => setTimeout(r, 20));
    proxy.stall = true;
    await new Promise((r) => setTimeout(r, 5000));
    proxy.stall = false;
    while (proxy.received < m.stored_bytes * 0.6) await new Promise((r) => setTimeout(r, 20));
    proxy.cut();
    proxy.throttleDown = 0;
    const line = await restored.waitFor(/restore: [\d.]+ MiB restored in/, 120_000);
    console.log(`  ${line.replace(/^.*restore: /, "")}`);
    assert.match(line, /\d+ range\(s\) resumed after a stall or reset/);
    await restored.waitFor(PROMOTED, 120_000);
    await restored.waitFor(READY, 60_000);
    assert.equal(await sql(restored, digest), want, "byte-exact: every row, same content");
  } finally {
    proxy.close();
    await cleanup(origin, ...(restored ? [restored] : []));
  }
});

Deno.test("restore: a restore killed midway, then cut off by an outage, continues from the parts it kept (each checked by SHA-256, a tampered one downloaded again), and is exact", async () => {
  const bucket = await freshBucket();
  const origin = await startSupervisor({ env: s3Env(bucket) });
  const proxy = new FaultProxy(RGW_HTTP);
  const root = await tempRoot("h4-resume-");
  const started: Instance[] = [];
  try {
    await origin.waitFor(READY, 60_000);
    await sql(
      origin,
      "create table big as select i, md5(i::text) || md5((i * 7)::text) as t from generate_series(1, 1500000) i",
    );
    const m = await ok<{ stored_bytes: number; parts: number; part_sha256: string[] }>(
      origin,
      "backup",
      { label: "k" },
    );
    assert.ok(m.parts >= 4, `${m.parts} parts`);
    await waitDrained(origin, 60_000);
    const digest = "select count(*) || ':' || md5(string_agg(t, ',' order by i)) from big";
    const want = await sql(origin, digest);
    const env = {
      ...s3Env(bucket, { endpoint: `http://127.0.0.1:${proxy.port}` }),
      BEYOND_PG_S3_IDLE_TIMEOUT: "5",
    };

    // Slowly, so that it can be killed with a few parts kept.
    proxy.throttleDown = 4 << 20;
    const first = await startSupervisor({
      root,
      args: ["restore", "--latest", "--serve"],
      password: origin.password,
      env,
    });
    started.push(first);
    const parts = `${root}/data/.restore-staging/parts/k`;
    const kept = () => {
      try {
        return [...Deno.readDirSync(parts)].filter((e) => /^\d+$/.test(e.name)).map((e) => e.name);
      } catch {
        return [];
      }
    };
    while (kept().length < 1) await new Promise((r) => setTimeout(r, 20));
    await cleanup(first); // SIGKILL, every process it started
    const afterKill = kept().length;
    assert.ok(afterKill < m.parts - 1, `${afterKill} of ${m.parts} kept before the kill`);

    // Run again; once one more part is kept the store goes away for good: one line, the parts
    // stay (and nothing else), the next run continues.
    const cutOff = await startSupervisor({
      root,
      args: ["restore", "--latest", "--serve"],
      password: origin.password,
      env: { ...env, BEYOND_PG_S3_ATTEMPTS: "2" },
    });
    started.push(cutOff);
    while (kept().length <= afterKill) await new Promise((r) => setTimeout(r, 20));
    proxy.down = true;
    proxy.cut();
    const status = await cutOff.exited;
    assert.notEqual(status.code, 0);
    const said = cutOff.lines.filter((l) => l.startsWith("beyond-pg restore:"));
    assert.equal(said.length, 1, said.join("\n"));
    assert.match(
      said[0]!,
      /downloading backup k failed: .*; the \d+ part\(s\) downloaded \([\d.]+ MiB\) are kept: run the same restore again to continue from them; \S+ is empty again \(but for the parts kept to continue\)$/,
    );
    assert.deepEqual(
      [...Deno.readDirSync(`${root}/data`)].map((e) => e.name).filter((n) =>
        n !== ".beyond-pg.lock"
      ),
      [".restore-staging"],
    );
    assert.deepEqual([...Deno.readDirSync(`${root}/data/.restore-staging`)].map((e) => e.name), [
      "parts",
    ]);
    proxy.down = false;
    const names = kept().sort((a, b) => Number(a) - Number(b));
    assert.ok(names.length > afterKill && names.length >= 2, `${names.length} kept`);
    // A kept part changed while nobody looked: its SHA-256 no longer matches, so it is fetched.
    const victim = `${parts}/${names[0]}`;
    const bytes = await Deno.readFile(victim);
    bytes[100]! ^= 0xff;
    await Deno.writeFile(victim, bytes);

    proxy.throttleDown = 0;
    proxy.received = 0;
    const second = await startSupervisor({
      root,
      args: ["restore", "--latest", "--serve"],
      password: origin.password,
      env,
    });
    started.push(second);
    const line = await second.waitFor(/restore: [\d.]+ MiB restored in/, 120_000);
    console.log(`  ${line.replace(/^.*restore: /, "")}`);
    const got =
      /; (\d+) part\(s\) \(([\d.]+) MiB\) kept by an interrupted restore reused, each checked by SHA-256/
        .exec(line);
    assert.equal(Number(got?.[1]), names.length - 1, line);
    assert.match(line, /; 1 kept part\(s\) failed their SHA-256 and were downloaded again/);
    // Only what was not kept (and the tampered part) came over the network again.
    const reusedBytes = Number(got![2]) * 2 ** 20;
    assert.ok(
      proxy.received <= m.stored_bytes - reusedBytes + (1 << 20),
      `${proxy.received} bytes downloaded, ${m.stored_bytes} stored, ${reusedBytes} reused`,
    );
    await second.waitFor(PROMOTED, 120_000);
    await second.waitFor(READY, 60_000);
    assert.equal(await sql(second, digest), want, "byte-exact: every row, same content");
    assert.equal(kept().length, 0, "the kept parts are gone once the restore is done");
  } finally {
    proxy.close();
    await cleanup(origin, ...started);
    await removeRoot(root);
  }
});

Deno.test("client-side encryption: WAL and backups are stored sealed, restore is exact with the key (rotated), the wrong key is one line", async () => {
  const bucket = await freshBucket();
  const key1 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const key2 = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const wrong = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const pg = await startSupervisor({
    env: { ...s3Env(bucket), BEYOND_PG_ARCHIVE_ENCRYPTION_KEY: key1 },
  });
  const served: Instance[] = [];
  try {
    await pg.waitFor(READY, 60_000);
    await sql(pg, "create table t (i int)");
    const m = await ok<{ encryption?: { key_id: string } }>(pg, "backup", { label: "sealed" });
    assert.match(m.encryption?.key_id ?? "", /^[0-9a-f]{16}$/);
    const seg = await addRows(pg, 1000);
    await waitDrained(pg, 60_000);
    const want = await sql(pg, "select count(*) || ':' || sum(i) from t");

    // What the store holds is ciphertext: the envelope's header, no zstd frame.
    const sysid = await sql(pg, "select system_identifier from pg_control_system()");
    const major = await sql(pg, "select current_setting('server_version_num')::int / 10000");
    const s3 = s3Client(bucket);
    const walObj =
      (await s3.get(`db/pg${major}-${sysid}/wal/${seg}`, undefined, { maxBytes: 17 << 20 }))!;
    assert.equal(new TextDecoder().decode(walObj.body.subarray(0, 4)), "BPGE");
    assert.equal(walObj.metadata["beyond-key-id"], m.encryption!.key_id);
    const backupHead = await s3.getStream(`db/pg${major}-${sysid}/basebackups/sealed/base.tar.zst`);
    const reader = backupHead!.getReader();
    const first = (await reader.read()).value!;
    assert.equal(new TextDecoder().decode(first.subarray(0, 4)), "BPGE");
    await reader.cancel();
    assert.equal((await cli(pg, ["verify"])).code, 0);

    // A new key first, the old one after it: old backups and WAL still restore.
    const restored = await startSupervisor({
      args: ["restore", "--latest", "--serve"],
      password: pg.password,
      env: { ...s3Env(bucket), BEYOND_PG_ARCHIVE_ENCRYPTION_KEY: `${key2},${key1}` },
    });
    served.push(restored);
    await restored.waitFor(PROMOTED, 120_000);
    await restored.waitFor(READY, 60_000);
    assert.equal(await sql(restored, "select count(*) || ':' || sum(i) from t"), want);
    await restored.stop();

    // The wrong key: one line naming the key id, nothing restored.
    const { restoreOnce } = await import("./support/restore.ts");
    const bad = await restoreOnce(bucket, pg.password, ["--latest"], {
      BEYOND_PG_ARCHIVE_ENCRYPTION_KEY: wrong,
    });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(
      bad.stderr,
      new RegExp(
        `backup sealed was encrypted with key id ${
          m.encryption!.key_id
        }, and BEYOND_PG_ARCHIVE_ENCRYPTION_KEY has only [0-9a-f]{16}; add the key that made it`,
      ),
    );
    assert.equal(
      bad.stderr.trim().split("\n").filter((l) => l.startsWith("beyond-pg")).length,
      1,
      bad.stderr,
    );
    assert.deepEqual(bad.entries, []);
    // No key at all: the same line, saying so.
    const none = await restoreOnce(bucket, pg.password, ["--latest"]);
    assert.equal(none.code, 2, none.stderr);
    assert.match(
      none.stderr,
      /BEYOND_PG_ARCHIVE_ENCRYPTION_KEY has no key; add the key that made it/,
    );
    assert.deepEqual(none.entries, []);
  } finally {
    await cleanup(pg, ...served);
  }
});

Deno.test("backup: one at a time — another is refused with one line naming the running one (CLI and RPC); a killed backup's base manifest is removed by the next", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  let lock: Deno.FsFile | undefined;
  try {
    await pg.waitFor(READY, 60_000);
    const dir = `${pg.env["BEYOND_PG_RUN_DIR"]}/backup`;
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    // A backup in progress, as a running one holds it (its label and pid in the file).
    lock = await Deno.open(`${dir}/backup.lock`, { read: true, write: true, create: true });
    await lock.lock(true);
    await lock.write(
      new TextEncoder().encode(
        JSON.stringify({ label: "nightly", pid: 4242, started: "2026-11-30T03:00:00.000Z" }),
      ),
    );
    const busy = await cli(pg, ["backup", "--label", "by-hand"]);
    assert.equal(busy.code, 2, busy.stderr);
    assert.equal(
      busy.stderr.trim(),
      "beyond-pg backup: backup nightly (pid 4242, started 2026-11-30T03:00:00.000Z) is running; one backup at a time: wait for it to finish, then run this one again",
    );
    const viaRpc = await control(pg, "backup", { label: "by-rpc" });
    assert.equal(viaRpc.ok, false);
    assert.match(
      viaRpc.ok ? "" : viaRpc.error.message,
      /^backup nightly \(pid 4242, .*\) is running; one backup at a time/,
    );
    assert.deepEqual(
      JSON.parse((await cli(pg, ["backups", "list", "--json"])).stdout),
      [],
      "nothing stored by a refused backup",
    );

    // The holder was killed: the lock is free, and its base manifest (and the fixed name of
    // earlier versions) is removed by the next backup, which then leaves none of its own.
    await Deno.writeTextFile(`${dir}/incremental-base.nightly.manifest`, "{}");
    await Deno.writeTextFile(`${dir}/incremental-base.manifest`, "{}");
    lock.close();
    lock = undefined;
    const next = await cli(pg, ["backup", "--label", "after", "--incremental"]);
    assert.equal(next.code, 0, next.stderr);
    const left = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(left, ["backup.lock"]);
    assert.equal(Deno.readTextFileSync(`${dir}/backup.lock`), "", "released: no holder named");
  } finally {
    lock?.close();
    await cleanup(pg);
  }
});

/** The offset and size of `name`'s data in an uncompressed tar (ustar headers). */
function tarMember(tar: Uint8Array, name: string): { offset: number; size: number } {
  const text = new TextDecoder();
  for (let off = 0; off + 512 <= tar.length;) {
    const header = tar.subarray(off, off + 512);
    const member = text.decode(header.subarray(0, 100)).replace(/\0.*$/s, "");
    if (!member) break;
    const size = parseInt(text.decode(header.subarray(124, 136)).replace(/\0.*$/s, "").trim(), 8);
    if (member === name || member === `./${name}`) return { offset: off + 512, size };
    off += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${name} is not in the tar`);
}

async function zstd(args: string[], input: Uint8Array): Promise<Uint8Array> {
  const p = new Deno.Command("zstd", {
    args: [...args, "-q", "-c"],
    stdin: "piped",
    stdout: "piped",
  })
    .spawn();
  const w = p.stdin.getWriter();
  const [out] = await Promise.all([p.output(), w.write(input).then(() => w.close())]);
  assert.ok(out.success, `zstd ${args.join(" ")} failed`);
  return out.stdout;
}

Deno.test("verify --restore-test (CLI and RPC): a good backup is restored, recovered to the end of the archived WAL and queried; one broken under a matching SHA-256 fails with one line; the temporary root goes either way", async () => {
  const bucket = await freshBucket();
  const pg = await startSupervisor({ env: s3Env(bucket) });
  try {
    await pg.waitFor(READY, 60_000);
    await sql(pg, "create table t (i int)");
    await sql(pg, "create database app");
    await ok(pg, "backup", { label: "good" });
    await addRows(pg, 1000);
    await addRows(pg, 1000);
    await waitDrained(pg, 60_000);
    const temp = `${pg.pgdata.replace(/\/[^/]+$/, "")}/.restore-test`;

    const good = await cli(pg, ["verify", "--restore-test", "--json"]);
    assert.equal(good.code, 0, good.stderr);
    const report = JSON.parse(good.stdout);
    const rt = report.restoreTest;
    assert.equal(rt.ok, true, rt.problem);
    assert.deepEqual(rt.backups, ["good"]);
    assert.deepEqual(rt.databases, ["app", "postgres", "template1"]);
    const lsn = (s: string) => {
      const [hi, lo] = s.split("/");
      return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
    };
    assert.ok(
      lsn(rt.recoveredTo) >= lsn(rt.walEnd) - BigInt(16 << 20),
      `${rt.recoveredTo} vs ${rt.walEnd}`,
    );
    assert.ok(!(await exists(temp)), "the temporary root is removed");
    console.log(`  restore test of a good backup: ${rt.seconds.toFixed(1)} s`);
    const sysid = await sql(pg, "select system_identifier from pg_control_system()");
    const major = await sql(pg, "select current_setting('server_version_num')::int / 10000");
    const s3 = s3Client(bucket);
    // It promoted, but wrote nothing to the archive (no new timeline there).
    const archived = await s3.list(`db/pg${major}-${sysid}/wal/`);
    assert.deepEqual(archived.filter((o) => o.key.endsWith(".history")), []);

    // A backup whose stored bytes match its manifest, but whose pg_control is broken (as if it
    // had been damaged before it was uploaded): the hash cannot see it, the restore test does.
    await ok(pg, "backup", { label: "broken" });
    await addRows(pg, 10);
    await waitDrained(pg, 60_000);
    const dir = `db/pg${major}-${sysid}/basebackups/broken`;
    const stored = (await s3.get(`${dir}/base.tar.zst`, undefined, { maxBytes: 1 << 30 }))!;
    const tar = await zstd(["-d"], stored.body);
    const control = tarMember(tar, "global/pg_control");
    tar[control.offset + 64]! ^= 0xff;
    const body = await zstd(["-1"], tar);
    const manifest = JSON.parse(
      new TextDecoder().decode((await s3.get(`${dir}/manifest.json`))!.body),
    );
    const sha = createHash("sha256").update(body).digest("hex");
    Object.assign(manifest, { sha256: sha, stored_bytes: body.length, parts: 1 });
    delete manifest.part_sha256;
    delete manifest.part_size;
    await s3.put(`${dir}/base.tar.zst`, body, { metadata: stored.metadata });
    await s3.put(`${dir}/manifest.json`, new TextEncoder().encode(JSON.stringify(manifest)));

    assert.equal((await cli(pg, ["verify", "--backup", "broken"])).code, 0, "hashes match");
    const bad = await cli(pg, ["verify", "--backup", "broken", "--restore-test"]);
    assert.equal(bad.code, 1, bad.stderr);
    assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
    assert.match(
      bad.stderr,
      /^beyond-pg verify: restore test of backup broken failed: postgres stopped during recovery \(exit \d+\): FATAL: incorrect checksum in control file$/m,
    );
    console.log(`  ${bad.stderr.trim()}`);
    assert.match(bad.stdout, /^restore test FAILED: /m);
    assert.match(bad.stdout, /^NOT restorable: /m);
    assert.ok(!(await exists(temp)), "removed after a failure too");
    // The good one still passes, chosen by label.
    const again = await cli(pg, ["verify", "--backup", "good", "--restore-test"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^restore test: backup good restored and recovered to /m);
    // The same through the running supervisor (the RPC runs it in a child, as root).
    const rpc = await ok<{ ok: boolean; restoreTest: { ok: boolean; backup: string } }>(
      pg,
      "verify",
      { backup: "broken", "restore-test": true },
    );
    assert.equal(rpc.ok, false);
    assert.equal(rpc.restoreTest.ok, false);
    assert.equal(rpc.restoreTest.backup, "broken");
    assert.ok(!(await exists(temp)), "removed after the RPC's restore test too");
  } finally {
    await cleanup(pg);
  }
});

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}
