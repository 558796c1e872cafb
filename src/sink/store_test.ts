import assert from "node:assert/strict";
import { RootTree } from "../fs/tree.ts";
import { parseLsn, SEGMENT_BYTES } from "../wal/names.ts";
import { segmentBytes, walk } from "../wal/reader.ts";
import { buildWal } from "../wal/testing_wal.ts";
import { SinkStore } from "./store.ts";

/** A sink's directory (`wal`, 0700) under a temporary root, removed after `fn`. */
async function inSinkDir(fn: (tree: RootTree, wal: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "bpg-sink-unit-" });
  try {
    await Deno.chmod(dir, 0o755);
    const wal = `${dir}/wal`;
    await Deno.mkdir(wal, { mode: 0o700 });
    await fn(RootTree.check(dir, "test"), wal);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("SinkStore.dropTornPartials(): a half-padded .partial of zeros goes, WAL stays", async () => {
  await inSinkDir(async (tree, wal) => {
    const store = new SinkStore(tree, wal, "s1");
    await Deno.writeFile(`${wal}/000000010000000000000002.partial`, new Uint8Array(4 << 20));
    const withWal = new Uint8Array(1 << 20);
    withWal[100] = 7;
    await Deno.writeFile(`${wal}/000000020000000000000002.partial`, withWal);
    await Deno.writeFile(`${wal}/000000010000000000000003.partial`, new Uint8Array(SEGMENT_BYTES));
    assert.deepEqual(store.dropTornPartials(), ["000000010000000000000002.partial"]);
    const left = [...Deno.readDirSync(wal)].map((e) => e.name).sort();
    assert.deepEqual(left, [
      "000000010000000000000003.partial",
      "000000020000000000000002.partial",
    ]);
  });
});

Deno.test("SinkStore.listing(): the partial's valid end, read 1 MiB at a time, across a record longer than that and a segment that starts inside one", async () => {
  await inSinkDir((tree, wal) => {
    const MiB = 1 << 20;
    // ~1 MiB of small records, one of 2.5 MiB, 1 MiB ones to near the segment's end, one of 3
    // MiB that continues 2.5 MiB into segment 2, then small ones.
    const lengths = [
      ...Array<number>(700).fill(1500),
      2.5 * MiB,
      ...Array<number>(12).fill(MiB),
      3 * MiB,
      ...Array<number>(200).fill(1500),
    ];
    const magic = 0xd110;
    const sysid = 7000000000000000042n;
    const w = buildWal(lengths, { segmentBytes: SEGMENT_BYTES, magic, sysid });
    const opts = { format: { magic, segmentBytes: SEGMENT_BYTES }, timeline: 1, sysid };
    const seg1 = w.segs.get(1n)!;
    const partial1 = `${wal}/000000010000000000000001.partial`;
    const writeUpTo = (lsn: bigint) => {
      const b = new Uint8Array(SEGMENT_BYTES);
      b.set(seg1.subarray(0, Number(lsn - BigInt(SEGMENT_BYTES))));
      Deno.writeFileSync(partial1, b);
      return b;
    };
    const following = new SinkStore(tree, wal, "s1");
    for (
      const upTo of [
        w.starts[300]!,
        w.starts[700]! + 1000n,
        w.starts[710]!,
        2n * BigInt(SEGMENT_BYTES),
      ]
    ) {
      const b = writeUpTo(upTo);
      const want = walk(segmentBytes(new Map([[1n, b]]), SEGMENT_BYTES), w.starts[0]!, opts).end;
      const end = (s: SinkStore) => parseLsn(s.listing().end!);
      assert.equal(end(following), want, `following, WAL up to ${upTo}`);
      assert.equal(end(new SinkStore(tree, wal, "s1")), want, `a first look, WAL up to ${upTo}`);
    }
    // Segment 2 starts with the last 2.5 MiB of the 3 MiB record: its first record is past them.
    Deno.renameSync(partial1, `${wal}/000000010000000000000001`);
    Deno.writeFileSync(`${wal}/000000010000000000000002.partial`, w.segs.get(2n)!);
    assert.equal(parseLsn(following.listing().end!), w.end);
    assert.equal(parseLsn(new SinkStore(tree, wal, "s1").listing().end!), w.end);
  });
});
