import assert from "node:assert/strict";
import { compress, decompress } from "./codec.ts";
import { WAL_OBJECT_MAX_BYTES } from "./target.ts";

Deno.test("decompress() refuses an object that inflates past the WAL cap (17 MiB)", async () => {
  const zeros = new Uint8Array(64 << 20);
  for (const codec of ["zstd", "gzip"] as const) {
    const small = await compress(codec, zeros);
    assert.ok(small.length < 1 << 20);
    await assert.rejects(decompress(codec, small), /decompresses to more than 17825792 bytes/);
  }
  const segment = await compress("zstd", new Uint8Array(16 << 20).fill(7));
  assert.equal((await decompress("zstd", segment)).length, 16 << 20);
  assert.equal(WAL_OBJECT_MAX_BYTES, (16 << 20) + (1 << 20));
});
