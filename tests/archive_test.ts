/**
 * WAL archiving and restore_command against real postgres and a real S3 server (radosgw):
 * the archive_command contract, faults (kill -9, store down), and the supervisor's
 * ahead-of-request uploads.
 */
import assert from "node:assert/strict";
import { PG_MAJOR } from "./support/paths.ts";
import { decompress } from "../src/wal/codec.ts";
import type { ArchiveConfig } from "../src/wal/config.ts";
import { walKind } from "../src/wal/names.ts";
import { sha256Hex } from "../src/util/crypto.ts";
import { FaultProxy } from "./support/proxy.ts";
import { waitDrained } from "./support/wal.ts";
import { freshBucket, RGW_HTTP, s3Client, s3Env } from "./support/s3.ts";
import {
  beyondPgCommand,
  cleanup,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;
const decoder = new TextDecoder();

/**
 * A 16 MiB WAL segment `name` whose long page header carries `sysid` (and the magic, timeline
 * and page address the name and major 15 call for); the rest is `fill`.
 */
function fakeSegment(sysid: bigint, name: string, fill = 1): Uint8Array {
  const seg = new Uint8Array(16 << 20);
  for (let i = 64; i < seg.length; i += 97) seg[i] = (i * fill) & 0xff;
  const v = new DataView(seg.buffer);
  v.setUint16(0, 0xd110, true); // xlp_magic of PostgreSQL 15
  v.setUint16(2, 0x0002, true); // XLP_LONG_HEADER
  v.setUint32(4, parseInt(name.slice(0, 8), 16), true); // timeline
  const segno = BigInt(parseInt(name.slice(8, 16), 16)) * 256n +
    BigInt(parseInt(name.slice(16, 24), 16));
  v.setBigUint64(8, segno * BigInt(16 << 20), true); // page address
  v.setBigUint64(24, sysid, true);
  v.setUint32(32, 16 << 20, true);
  v.setUint32(36, 8192, true);
  return seg;
}

interface Standalone {
  root: string;
  runDir: string;
  cfg: ArchiveConfig;
  env: Record<string, string>;
}

/**
 * The private config and the public state as the supervisor writes them, with no supervisor
 * behind the socket: `archive` and `restore-wal` run as root then work by themselves.
 */
async function standalone(bucket: string, endpoint?: string, sysid = "7000000000000000001") {
  const root = await tempRoot();
  const runDir = `${root}/run`;
  await Deno.mkdir(`${runDir}/archive`, { recursive: true });
  const cfg: ArchiveConfig = {
    target: `s3://${bucket}/db`,
    endpoint: endpoint ?? `http://127.0.0.1:${RGW_HTTP}`,
    region: "us-east-1",
    accessKeyId: "test",
    secretAccessKey: "testtesttest",
    caCerts: [],
    codec: "zstd",
    parallel: 2,
    major: 15,
    sysid,
    pgdata: `${root}/pgdata`,
    walDir: `${root}/pgdata/pg_wal`,
    socket: `${runDir}/archive/none.sock`,
    binDir: "/usr/lib/postgresql/15/bin",
    pgVersion: "15",
    socketDir: root,
    port: 1,
  };
  await Deno.mkdir(`${runDir}/private`, { mode: 0o700 });
  await Deno.writeTextFile(`${runDir}/private/archive.json`, JSON.stringify(cfg), { mode: 0o600 });
  await Deno.writeTextFile(
    `${runDir}/archive/state.json`,
    JSON.stringify({ mode: "on", socket: cfg.socket, target: cfg.target }),
  );
  const env = { BEYOND_PG_RUN_DIR: runDir, BEYOND_PG_RESTORE_RETRY_SECONDS: "2" };
  return { root, runDir, cfg, env } satisfies Standalone;
}

function spawn(args: string[], env: Record<string, string>): Deno.ChildProcess {
  const c = beyondPgCommand(args);
  return new Deno.Command(c.cmd, {
    args: c.args,
    env: { ...env, DENO_NO_UPDATE_CHECK: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function run(args: string[], env: Record<string, string>) {
  const out = await spawn(args, env).output();
  return { code: out.code, stderr: decoder.decode(out.stderr).trim() };
}

async function walObject(bucket: string, key: string): Promise<Uint8Array | undefined> {
  const obj = await s3Client(bucket).get(key, undefined, { maxBytes: 32 << 20 });
  if (!obj) return undefined;
  return await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
}

Deno.test("archive: same content twice → 0; different content → refused, archive unchanged; .history too", async () => {
  const bucket = await freshBucket();
  const s = await standalone(bucket);
  try {
    const sysid = BigInt(s.cfg.sysid);
    const name = "000000010000000000000003";
    const wal = `${s.root}/${name}`;
    await Deno.writeFile(wal, fakeSegment(sysid, name, 3));
    assert.equal((await run(["archive", wal, name], s.env)).code, 0);
    const key = `db/pg15-${s.cfg.sysid}/wal/${name}`;
    const stored = await walObject(bucket, key);
    assert.equal(await sha256Hex(stored!), await sha256Hex(await Deno.readFile(wal)));
    assert.equal((await run(["archive", wal, name], s.env)).code, 0, "identical again → 0");

    await Deno.writeFile(wal, fakeSegment(sysid, name, 5));
    const diff = await run(["archive", wal, name], s.env);
    assert.notEqual(diff.code, 0);
    assert.match(diff.stderr, /already archived with different content/);
    assert.equal(await sha256Hex((await walObject(bucket, key))!), await sha256Hex(stored!));

    const hist = `${s.root}/00000002.history`;
    await Deno.writeTextFile(hist, "1\t0/3000000\tbefore 2026-11-23\n");
    assert.equal((await run(["archive", hist, "00000002.history"], s.env)).code, 0);
    assert.equal((await run(["archive", hist, "00000002.history"], s.env)).code, 0);
    await Deno.writeTextFile(hist, "1\t0/4000000\tother\n");
    assert.notEqual((await run(["archive", hist, "00000002.history"], s.env)).code, 0);
    const h = await walObject(bucket, `db/pg15-${s.cfg.sysid}/wal/00000002.history`);
    assert.equal(decoder.decode(h!), "1\t0/3000000\tbefore 2026-11-23\n");

    // A segment from another cluster (its header says so) is refused.
    const name4 = "000000010000000000000004";
    await Deno.writeFile(wal, fakeSegment(sysid + 1n, name4));
    const other = await run(["archive", wal, name4], s.env);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /belongs to another cluster/);
    // Names postgres never hands over are refused too.
    assert.notEqual((await run(["archive", wal, "../etc/passwd"], s.env)).code, 0);
  } finally {
    await removeRoot(s.root);
  }
});

Deno.test("archive: kill -9 mid-upload and after the upload → no partial object; re-archive → 0", async () => {
  const bucket = await freshBucket();
  const proxy = new FaultProxy(RGW_HTTP);
  const s = await standalone(bucket, `http://127.0.0.1:${proxy.port}`);
  try {
    const name = "000000010000000000000007";
    const wal = `${s.root}/${name}`;
    // Random content: compression does not shrink it, so the upload takes a while.
    const seg = fakeSegment(BigInt(s.cfg.sysid), name);
    for (let o = 4096; o < seg.length; o += 65536) {
      crypto.getRandomValues(seg.subarray(o, o + 65536));
    }
    await Deno.writeFile(wal, seg);
    const key = `db/pg15-${s.cfg.sysid}/wal/${name}`;

    // 1. Mid-upload: throttled, killed once half the bytes went out.
    proxy.throttle = 4 << 20;
    proxy.sent = 0;
    let p = spawn(["archive", wal, name], s.env);
    while (proxy.sent < 8 << 20) await new Promise((r) => setTimeout(r, 20));
    p.kill("SIGKILL");
    await p.output();
    proxy.cut();
    assert.equal(await s3Client(bucket).head(key), undefined, "no partial object visible");

    // 2. After the upload, before it could exit 0: the store's answer never arrives.
    proxy.throttle = 0;
    proxy.holdResponses = true;
    const before = proxy.responses;
    p = spawn(["archive", wal, name], s.env);
    const deadline = Date.now() + 60_000;
    while (!(await s3Client(bucket).head(key)) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(proxy.responses > before);
    p.kill("SIGKILL");
    await p.output();
    proxy.holdResponses = false;
    proxy.cut();

    // 3. postgres retries: 0, and the object is the segment.
    assert.equal((await run(["archive", wal, name], s.env)).code, 0);
    assert.equal(await sha256Hex((await walObject(bucket, key))!), await sha256Hex(seg));
  } finally {
    proxy.close();
    await removeRoot(s.root);
  }
});

Deno.test("restore-wal: missing → 1; store down → retries then 126; killed mid-download → no file at %p", async () => {
  const bucket = await freshBucket();
  const proxy = new FaultProxy(RGW_HTTP);
  const s = await standalone(bucket, `http://127.0.0.1:${proxy.port}`);
  try {
    const name = "000000010000000000000009";
    const wal = `${s.root}/${name}`;
    const seg = fakeSegment(BigInt(s.cfg.sysid), name);
    for (let o = 4096; o < seg.length; o += 65536) {
      crypto.getRandomValues(seg.subarray(o, o + 65536));
    }
    await Deno.writeFile(wal, seg);
    assert.equal((await run(["archive", wal, name], s.env)).code, 0);
    const target = `${s.root}/RECOVERYXLOG`;

    assert.equal((await run(["restore-wal", "00000001000000000000000A", target], s.env)).code, 1);
    assert.equal((await run(["restore-wal", name, target], s.env)).code, 0);
    assert.equal(await sha256Hex(await Deno.readFile(target)), await sha256Hex(seg));
    await Deno.remove(target);

    proxy.down = true;
    proxy.cut();
    const t0 = performance.now();
    const down = await run(["restore-wal", name, target], s.env);
    assert.ok(down.code >= 126, `exit ${down.code}: ${down.stderr}`);
    assert.ok(performance.now() - t0 > 1500, "retried with backoff before giving up");
    assert.match(down.stderr, /cannot reach the S3 endpoint.*rather than ending it early/);
    proxy.down = false;

    // A corrupt object: one clear line, recovery stops (≥ 126), nothing at %p.
    const bad = "00000001000000000000000B";
    await s3Client(bucket).put(
      `db/pg15-${s.cfg.sysid}/wal/${bad}`,
      new Uint8Array(4096).fill(7),
      { metadata: { "beyond-codec": "zstd", "beyond-size": String(16 << 20) } },
    );
    const corrupt = await run(["restore-wal", bad, target], s.env);
    assert.ok(corrupt.code >= 126, `exit ${corrupt.code}`);
    assert.match(corrupt.stderr, /in the archive is corrupt/);
    assert.throws(() => Deno.statSync(target), Deno.errors.NotFound);

    // Killed mid-download (the store's answer trickles): nothing at %p.
    proxy.throttleDown = 2 << 20;
    proxy.received = 0;
    const p = spawn(["restore-wal", name, target], s.env);
    while (proxy.received < 4 << 20) await new Promise((r) => setTimeout(r, 20));
    p.kill("SIGKILL");
    await p.output();
    proxy.throttleDown = 0;
    proxy.cut();
    assert.throws(() => Deno.statSync(target), Deno.errors.NotFound);
  } finally {
    proxy.close();
    await removeRoot(s.root);
  }
});

/** Segment names in the archive of the one cluster in `bucket`. */
async function archivedNames(bucket: string): Promise<string[]> {
  const objects = await s3Client(bucket).list("db/");
  return objects.map((o) => o.key.split("/").pop()!).filter((n) => walKind(n) === "segment")
    .sort();
}

function contiguous(names: string[]): boolean {
  for (let i = 1; i < names.length; i++) {
    if (parseInt(names[i]!.slice(16), 16) !== parseInt(names[i - 1]!.slice(16), 16) + 1) {
      return false;
    }
  }
  return true;
}

Deno.test("archiving under pgbench: every archived segment is byte-equal to pg_wal's, no gaps; store down → retained, then drained", async () => {
  const bucket = await freshBucket();
  const proxy = new FaultProxy(RGW_HTTP);
  const pg = await startSupervisor({
    env: { ...s3Env(bucket, { endpoint: `http://127.0.0.1:${proxy.port}` }) },
  });
  try {
    await pg.waitFor(READY, 60_000);
    await pg.waitFor(/archiving to s3:\/\//);
    // Keep segments in pg_wal so they can be compared after archiving.
    await psql(pg.directPort, "alter system set wal_keep_size = '2GB'", { password: pg.password });
    await psql(pg.directPort, "select pg_reload_conf()", { password: pg.password });
    const bench = (args: string[]) =>
      new Deno.Command("pgbench", {
        args: [
          "-h",
          "127.0.0.1",
          "-p",
          String(pg.directPort),
          "-U",
          "postgres",
          ...args,
          "postgres",
        ],
        env: { PGPASSWORD: pg.password },
        stdout: "null",
        stderr: "piped",
      }).output();
    // WAL by volume, not by time (a busy machine writes less per second).
    const segment = async () =>
      parseInt(
        (await psql(pg.directPort, "select pg_walfile_name(pg_current_wal_lsn())", {
          password: pg.password,
        })).slice(16),
        16,
      );
    const load = async (segments: number) => {
      const until = (await segment()) + segments;
      while ((await segment()) < until) await bench(["-c", "4", "-T", "2", "-n"]);
    };
    assert.ok((await bench(["-i", "-s", "10", "-q"])).success);
    await load(1);
    await waitDrained(pg, 60_000);

    // The store goes away under load: archiving fails, pg_wal keeps everything.
    proxy.down = true;
    proxy.cut();
    await load(1);
    await psql(pg.directPort, "select pg_switch_wal()", { password: pg.password });
    await new Promise((r) => setTimeout(r, 3000));
    const failed = await psql(pg.directPort, "select failed_count from pg_stat_archiver", {
      password: pg.password,
    });
    assert.ok(Number(failed) > 0, "archive_command failed while the store was down");
    const ready = [...Deno.readDirSync(`${pg.pgdata}/pg_wal/archive_status`)].filter((e) =>
      e.name.endsWith(".ready")
    );
    assert.ok(ready.length > 0, "segments wait in pg_wal");
    proxy.down = false;
    // Everything that waited during the outage, and what came after, is archived.
    await waitDrained(pg, 120_000, ready.map((e) => e.name.slice(0, -6)).sort().at(-1));

    const names = await archivedNames(bucket);
    assert.ok(names.length >= 8, `${names.length} segments archived`);
    assert.ok(contiguous(names), `no gaps: ${names[0]}..${names.at(-1)}`);
    let compared = 0;
    for (const name of names) {
      let local: Uint8Array;
      try {
        local = await Deno.readFile(`${pg.pgdata}/pg_wal/${name}`);
      } catch {
        continue; // removed before wal_keep_size applied
      }
      const sysid =
        (await psql(pg.directPort, "select system_identifier from pg_control_system()", {
          password: pg.password,
        })).trim();
      const remote = await walObject(bucket, `db/pg${PG_MAJOR}-${sysid}/wal/${name}`);
      assert.equal(await sha256Hex(remote!), await sha256Hex(local), name);
      compared++;
    }
    assert.ok(compared >= names.length - 3, `${compared} of ${names.length} compared`);

    // Metrics show the archive.
    // (The backlog gauge follows the archive_status scan, once a second.)
    let metrics = "";
    for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
      metrics = await (await fetch(`http://127.0.0.1:${pg.httpPort}/metrics`)).text();
      if (/^beyond_pg_archive_backlog 0$/m.test(metrics)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.match(metrics, /^beyond_pg_archive_files_total\{result="stored"\} [1-9]/m);
    assert.match(metrics, /^beyond_pg_archive_backlog 0$/m);
  } finally {
    proxy.close();
    await cleanup(pg);
  }
});

Deno.test("a second cluster pointed at the same prefix is refused at boot with one line naming the fix", async () => {
  const bucket = await freshBucket();
  const a = await startSupervisor({ env: s3Env(bucket) });
  let b;
  try {
    await a.waitFor(READY, 60_000);
    await a.waitFor(/archiving to s3:\/\//);
    b = await startSupervisor({ env: s3Env(bucket) });
    const code = (await b.exited).code;
    assert.notEqual(code, 0);
    assert.ok(
      b.lines.some((l) =>
        /belongs to another cluster.*point BEYOND_PG_ARCHIVE_TARGET at its own prefix/.test(l)
      ),
      b.lines.slice(-5).join("\n"),
    );
  } finally {
    await cleanup(a, ...(b ? [b] : []));
  }
});

Deno.test("bad credentials or a missing bucket: one line naming the fix; postgres serves and keeps its WAL", async () => {
  const bucket = await freshBucket();
  const wrongKey = await startSupervisor({
    env: { ...s3Env(bucket), BEYOND_PG_S3_SECRET_KEY: "not-the-secret" },
  });
  const noBucket = await startSupervisor({
    env: s3Env(`missing-${crypto.randomUUID().slice(0, 8)}`),
  });
  try {
    for (
      const [pg, pattern] of [
        [
          wrongKey,
          /S3 refused the credentials .*check BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY/,
        ],
        [
          noBucket,
          /bucket missing-\S+ does not exist at http:\/\/127.0.0.1:7480; create it or fix BEYOND_PG_ARCHIVE_TARGET/,
        ],
      ] as const
    ) {
      await pg.waitFor(pattern);
      await pg.waitFor(READY, 60_000);
      await psql(pg.directPort, "select pg_switch_wal() from (select txid_current()) s", {
        password: pg.password,
      });
      await new Promise((r) => setTimeout(r, 1000));
      const failed = await psql(pg.directPort, "select failed_count from pg_stat_archiver", {
        password: pg.password,
      });
      assert.ok(Number(failed) > 0);
      assert.ok(
        [...Deno.readDirSync(`${pg.pgdata}/pg_wal/archive_status`)].some((e) =>
          e.name.endsWith(".ready")
        ),
      );
    }
  } finally {
    await cleanup(wrongKey, noBucket);
  }
});
