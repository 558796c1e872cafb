import assert from "node:assert/strict";
import { RootTree } from "../fs/tree.ts";
import { Flusher, levelWarningFor } from "./flusher.ts";
import { SinkStore } from "./store.ts";

const SEG = "000000010000000000000001";
const NEXT = "000000010000000000000002";

Deno.test("the flusher syncs the partial every round, a complete segment once, and records what it covered", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpg-flusher-" });
  try {
    const tree = RootTree.check(dir, "test");
    let end: bigint | undefined = 100n;
    const f = new Flusher(tree, dir, new SinkStore(tree, dir, "s1"), () => end);
    Deno.writeFileSync(`${dir}/${SEG}.partial`, new Uint8Array(8192));
    Deno.writeFileSync(`${dir}/other.tmp`, new Uint8Array(1));
    await f.round();
    assert.equal(f.flushed, 100n);
    assert.equal(f.rounds, 1);
    // The partial is finished (renamed) and the next begins: both are seen, the old name gone.
    Deno.renameSync(`${dir}/${SEG}.partial`, `${dir}/${SEG}`);
    Deno.writeFileSync(`${dir}/${NEXT}.partial`, new Uint8Array(8192));
    end = 200n;
    await f.round();
    await f.round();
    assert.equal(f.flushed, 200n);
    assert.equal(f.rounds, 3);
    await f.close();
    assert.equal(f.rounds, 4);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a sink acknowledging on write warns only about a primary at on or remote_apply", () => {
  assert.equal(levelWarningFor("remote_write"), undefined);
  assert.equal(levelWarningFor("local"), undefined);
  assert.match(
    levelWarningFor("on")!,
    /^the primary's synchronous_commit is on .*BEYOND_PG_SINK_ACK=flush/,
  );
  assert.match(levelWarningFor("remote_apply")!, /remote_apply/);
});
