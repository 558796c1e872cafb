import assert from "node:assert/strict";
import { readControlCheckpoint } from "./control_file.ts";

Deno.test("control file: state, checkpoint, redo and timeline from their offsets", () => {
  const b = new Uint8Array(8192);
  const v = new DataView(b.buffer);
  v.setUint32(16, 1, true);
  v.setBigUint64(32, 0x1_0000_0028n, true);
  v.setBigUint64(40, 0x1_0000_0028n, true);
  v.setUint32(48, 3, true);
  assert.deepEqual(readControlCheckpoint(b), {
    state: "shut down",
    checkpoint: 0x1_0000_0028n,
    redo: 0x1_0000_0028n,
    timeline: 3,
  });
  v.setUint32(16, 6, true);
  assert.equal(readControlCheckpoint(b).state, "in production");
  assert.throws(() => readControlCheckpoint(new Uint8Array(10)), /too short/);
});
