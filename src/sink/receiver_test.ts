import assert from "node:assert/strict";
import { findNoSyncPreload } from "./receiver.ts";

Deno.test("findNoSyncPreload() takes the first library only root (or this user) can change, else none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpg-preload-" });
  try {
    const open = `${dir}/writable.so`;
    const good = `${dir}/good.so`;
    Deno.writeFileSync(open, new Uint8Array(1), { mode: 0o666 });
    Deno.chmodSync(open, 0o666);
    Deno.writeFileSync(good, new Uint8Array(1), { mode: 0o644 });
    assert.equal(findNoSyncPreload([`${dir}/missing.so`]), undefined);
    assert.equal(findNoSyncPreload([open]), undefined, "writable by others");
    assert.equal(findNoSyncPreload([open, good]), good);
    assert.equal(findNoSyncPreload([dir]), undefined, "a directory is not a library");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
