import assert from "node:assert/strict";
import {
  clusterStateOf,
  crc32c,
  findCrcOffset,
  newSystemIdentifier,
  readSystemIdentifier,
  withSystemIdentifier,
} from "./pg_control.ts";

Deno.test("crc32c() matches the standard check value", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
});

function fakeControl(dataLength: number): Uint8Array {
  const buf = new Uint8Array(8192);
  crypto.getRandomValues(buf.subarray(0, dataLength));
  new DataView(buf.buffer).setUint32(dataLength, crc32c(buf.subarray(0, dataLength)), true);
  return buf;
}

Deno.test("withSystemIdentifier() rewrites the identifier and keeps the CRC valid at its offset", () => {
  for (const len of [288, 296, 304, 320]) {
    const control = fakeControl(len);
    assert.equal(findCrcOffset(control), len);
    const patched = withSystemIdentifier(control, 0x1234_5678_9abc_def0n);
    assert.equal(readSystemIdentifier(patched), 0x1234_5678_9abc_def0n);
    assert.equal(findCrcOffset(patched), len);
    assert.deepEqual(patched.subarray(8, len), control.subarray(8, len));
  }
});

Deno.test("withSystemIdentifier() refuses a file without a verifiable CRC", () => {
  assert.throws(() => withSystemIdentifier(new Uint8Array(8192).fill(1), 1n), /no verifiable CRC/);
});

Deno.test("newSystemIdentifier() puts seconds in the high half and differs call to call", () => {
  const id = newSystemIdentifier(1_700_000_000_123, 7);
  assert.equal(id >> 32n, 1_700_000_000n);
  assert.equal((id >> 12n) & 0xfffffn, 123_000n);
  assert.equal(id & 0xfffn, 7n);
  assert.notEqual(newSystemIdentifier(), newSystemIdentifier(Date.now(), 4095) ^ 1n);
});

Deno.test("clusterStateOf() reads DBState at offset 16 as pg_controldata words it", () => {
  const control = new Uint8Array(8192);
  const view = new DataView(control.buffer);
  view.setUint32(16, 1, true);
  assert.equal(clusterStateOf(control), "shut down");
  view.setUint32(16, 6, true);
  assert.equal(clusterStateOf(control), "in production");
  view.setUint32(16, 99, true);
  assert.equal(clusterStateOf(control), "unknown state 99");
});
