import assert from "node:assert/strict";
import { RootTree } from "../fs/tree.ts";
import { SEGMENT_BYTES } from "../wal/names.ts";
import { SinkStore } from "./store.ts";

Deno.test("SinkStore.dropTornPartials(): a half-padded .partial of zeros goes, WAL stays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpg-sink-unit-" });
  try {
    await Deno.chmod(dir, 0o755);
    const wal = `${dir}/wal`;
    await Deno.mkdir(wal, { mode: 0o700 });
    const store = new SinkStore(RootTree.check(dir, "test"), wal, "s1");
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
