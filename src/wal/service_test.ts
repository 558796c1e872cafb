/**
 * The archive service's policy against an object store in memory: uploads ahead of
 * postgres's request, retries after store errors, done markers, the backlog gauge. Real
 * segment files in a temp pg_wal (the validation reads them); no postgres, no S3.
 */
import assert from "node:assert/strict";
import { PgTree, RootTree } from "../fs/tree.ts";
import { MemoryStore } from "../s3/memory_store.ts";
import type { ArchiveConfig } from "./config.ts";
import { ArchiveError } from "./errors.ts";
import { ArchiveService } from "./service.ts";
import { buildWal } from "./testing_wal.ts";

const SYSID = 7000000000000000042n;
const SEG = 16 << 20;

/** A 16 MiB file whose first page header passes validation for PostgreSQL 15. */
function segment(name: string): Uint8Array {
  const seg = new Uint8Array(SEG);
  const v = new DataView(seg.buffer);
  v.setUint16(0, 0xd110, true); // xlp_magic of PostgreSQL 15
  v.setUint16(2, 0x0002, true); // XLP_LONG_HEADER
  v.setUint32(4, parseInt(name.slice(0, 8), 16), true);
  const segno = BigInt(parseInt(name.slice(8, 16), 16)) * 256n +
    BigInt(parseInt(name.slice(16, 24), 16));
  v.setBigUint64(8, segno * BigInt(SEG), true);
  v.setBigUint64(24, SYSID, true);
  v.setUint32(32, SEG, true);
  v.setUint32(36, 8192, true);
  return seg;
}

const names = (n: number) =>
  Array.from(
    { length: n },
    (_, i) => `000000010000000000000${(i + 1).toString(16).padStart(3, "0")}`,
  );

interface Fixture {
  dir: string;
  store: MemoryStore;
  service: ArchiveService;
  done: RootTree;
  recovered: number;
  [Symbol.asyncDispose](): Promise<void>;
}

async function fixture(
  ready: string[],
  o: { down?: boolean; retryMs?: number; store?: MemoryStore } = {},
) {
  const dir = await Deno.makeTempDir({ prefix: "bpg-service-" });
  const walDir = `${dir}/pg_wal`;
  await Deno.mkdir(`${walDir}/archive_status`, { recursive: true });
  for (const name of ready) {
    await Deno.writeFile(`${walDir}/${name}`, segment(name));
    await Deno.writeTextFile(`${walDir}/archive_status/${name}.ready`, "");
  }
  const cfg: ArchiveConfig = {
    target: "s3://bucket/db",
    endpoint: "http://127.0.0.1:1",
    region: "us-east-1",
    accessKeyId: "test",
    secretAccessKey: "test",
    caCerts: [],
    codec: "none",
    parallel: 2,
    major: 15,
    sysid: String(SYSID),
    pgdata: dir,
    walDir,
    socket: `${dir}/archive.sock`,
    binDir: "/nonexistent",
    pgVersion: "15.0",
    socketDir: dir,
    port: 5432,
  };
  const store = o.store ?? new MemoryStore();
  store.down = o.down ?? false;
  const done = RootTree.check(`${dir}/done`, "test");
  const f: Fixture = {
    dir,
    store,
    done,
    recovered: 0,
    service: undefined as unknown as ArchiveService,
    async [Symbol.asyncDispose]() {
      f.service.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
  f.service = new ArchiveService({
    cfg,
    store,
    walDir,
    data: new PgTree(dir, undefined),
    spoolDir: `${dir}/spool`,
    done,
    scanMs: 20,
    retryMs: o.retryMs ?? 50,
    onRecovered: () => f.recovered++,
  });
  return f;
}

function stored(store: MemoryStore, name: string): boolean {
  return [...store.objects.keys()].some((k) => k.endsWith(`/wal/${name}`));
}

async function until(what: string, ok: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("ready files are stored ahead of postgres's request and marked done", async () => {
  const ready = names(3);
  await using f = await fixture(ready);
  f.service.start();
  await until("all stored", () => ready.every((n) => stored(f.store, n)));
  await until(
    "done markers",
    () => f.done.list(f.done.base).map((e) => e.name).sort().join() === ready.join(),
  );
  // postgres's request for a stored file is answered without another upload.
  const puts = f.store.calls.filter((c) => c.startsWith("PUT")).length;
  assert.deepEqual(await f.service.archive(ready[0]!), { name: ready[0], uploadedNow: false });
  assert.equal(f.store.calls.filter((c) => c.startsWith("PUT")).length, puts);
  assert.equal(f.service.stats.archivedTotal, 3);
  assert.equal(f.service.stats.backlog, 0);
  assert.equal(f.service.stats.firstUncovered, "");
  assert.equal(f.service.stats.lastArchived, ready[2]);
});

Deno.test("a store that is down: backlog counted, the request fails, storing resumes after", async () => {
  const ready = names(3);
  await using f = await fixture(ready, { down: true });
  f.service.start();
  await until("failures", () => f.service.stats.failedTotal > 0);
  assert.equal(f.service.stats.backlog, 3);
  assert.equal(f.service.stats.firstUncovered, ready[0]);
  assert.match(f.service.stats.lastError, /cannot reach the store/);
  assert.equal(f.done.list(f.done.base).length, 0, "nothing is marked done");
  await assert.rejects(f.service.archive(ready[0]!), (e) => e instanceof ArchiveError);

  f.store.down = false;
  await until("stored after recovery", () => ready.every((n) => stored(f.store, n)));
  await until("backlog drained", () => f.service.stats.backlog === 0);
  assert.equal(f.service.stats.lastError, "");
  assert.equal(f.recovered, 1, "postgres's archiver is woken once");
  assert.equal(f.done.list(f.done.base).length, 3);
});

Deno.test("one failed upload is retried ahead of the request after retryMs", async () => {
  const [name] = names(1);
  await using f = await fixture([name!], { retryMs: 100 });
  f.store.failNext = 1; // the owner check's first call
  f.service.start();
  await until("stored", () => stored(f.store, name!));
  assert.ok(f.service.stats.failedTotal >= 1);
  assert.equal(f.service.stats.backlog, 0);
});

Deno.test("a file postgres no longer lists loses its done marker", async () => {
  const ready = names(2);
  await using f = await fixture(ready);
  const markers = () => f.done.list(f.done.base).map((e) => e.name).sort();
  f.service.start();
  await until("done markers", () => markers().join() === ready.join());
  await Deno.remove(`${f.dir}/pg_wal/archive_status/${ready[0]}.ready`);
  await until("stale marker removed", () => markers().length === 1);
  assert.deepEqual(markers(), [ready[1]]);
});

Deno.test("a file of another cluster is refused and never stored", async () => {
  const [name] = names(1);
  await using f = await fixture([name!]);
  const seg = segment(name!);
  new DataView(seg.buffer).setBigUint64(24, 1n, true); // another system identifier
  await Deno.writeFile(`${f.dir}/pg_wal/${name}`, seg);
  await assert.rejects(
    f.service.archive(name!),
    (e) => e instanceof ArchiveError && !e.transient,
  );
  assert.ok(!stored(f.store, name!));
  assert.equal(f.done.list(f.done.base).length, 0);
});

Deno.test("an upload in flight has its `.up` marker, gone once stored", async () => {
  const [name] = names(1);
  await using f = await fixture([name!]);
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const put = f.store.put.bind(f.store);
  f.store.put = async (...args: Parameters<typeof put>) => {
    if (args[0].includes("/wal/")) await release; // not the owner record
    return await put(...args);
  };
  f.service.start();
  await until(
    "the .up marker",
    () => f.done.list(f.done.base).some((e) => e.name === `${name}.up`),
  );
  resolve();
  await until("stored", () => stored(f.store, name!));
  await until("only the done marker", () => {
    const left = f.done.list(f.done.base).map((e) => e.name);
    return left.length === 1 && left[0] === name;
  });
});

/** Segment 000000010000000000000001 whose last record is a switch; where that record ends. */
function switched(): { file: Uint8Array; end: number } {
  const w = buildWal([100, 3000, 50], {
    switchAt: 2,
    segmentBytes: SEG,
    magic: 0xd110,
    sysid: SYSID,
  });
  return { file: w.segs.get(1n)!, end: Number(w.starts[2]! - BigInt(SEG)) + 24 + 50 };
}

Deno.test("after a promotion at a segment boundary, the old timeline's last segment is stored though postgres marked it for nobody", async () => {
  await using f = await fixture([]);
  const wal = `${f.dir}/pg_wal`;
  const name = "000000010000000000000001";
  await Deno.writeFile(`${wal}/${name}`, switched().file); // no .ready, no .done
  // postgres's uid made the history file a FIFO: not opened (nothing hangs), nothing stored.
  const mkfifo = await new Deno.Command("mkfifo", { args: [`${wal}/00000002.history`] }).output();
  assert.ok(mkfifo.success);
  assert.equal(await f.service.afterPromotion(2), undefined);
  await Deno.remove(`${wal}/00000002.history`);
  // The timeline ended inside the segment: postgres archives its .partial itself.
  await Deno.writeTextFile(`${wal}/00000002.history`, "1\t0/1800000\tno recovery target\n");
  assert.equal(await f.service.afterPromotion(2), undefined);
  // At the segment's end: nobody marks it.
  await Deno.writeTextFile(`${wal}/00000002.history`, "1\t0/2000000\tno recovery target\n");
  await Deno.writeTextFile(`${wal}/archive_status/${name}.done`, "");
  assert.equal(await f.service.afterPromotion(2), undefined, "postgres already did");
  await Deno.remove(`${wal}/archive_status/${name}.done`);
  // A copy whose WAL stops short (never fully received) is not stored.
  const { file, end } = switched();
  const short = file.slice();
  short.fill(0, end - 60);
  await Deno.writeFile(`${wal}/${name}`, short);
  assert.equal(await f.service.afterPromotion(2), name);
  await until("given up", () => f.service.stats.backlog === 0);
  assert.ok(!stored(f.store, name));
  // The whole WAL up to the switch: stored.
  await Deno.writeFile(`${wal}/${name}`, file);
  assert.equal(await f.service.afterPromotion(2), name);
  assert.equal(f.service.stats.backlog, 1);
  await until("stored", () => stored(f.store, name));
  await until("backlog drained", () => f.service.stats.backlog === 0);
  assert.equal(f.service.stats.archivedTotal, 1);
});

Deno.test("a copy of a segment that differs only after its switch record is already archived; any other difference is refused", async () => {
  const name = "000000010000000000000001";
  const { file, end } = switched();
  await using a = await fixture([]);
  await Deno.writeFile(`${a.dir}/pg_wal/${name}`, file);
  await a.service.archive(name);
  assert.ok(stored(a.store, name));
  // A promoted standby's copy: the padding after the switch record never arrived.
  await using b = await fixture([], { store: a.store });
  const zeros = file.slice();
  zeros.fill(0, end);
  await Deno.writeFile(`${b.dir}/pg_wal/${name}`, zeros);
  assert.deepEqual(await b.service.archive(name), { name, uploadedNow: true });
  assert.equal(b.service.stats.alreadyStoredTotal, 1);
  // A byte before the switch record's end: not the same WAL.
  await using c = await fixture([], { store: a.store });
  const other = file.slice();
  other[end - 30] = other[end - 30]! ^ 1;
  await Deno.writeFile(`${c.dir}/pg_wal/${name}`, other);
  await assert.rejects(
    c.service.archive(name),
    (e) => e instanceof ArchiveError && /different content \(bytes differ\)/.test(e.message),
  );
});
