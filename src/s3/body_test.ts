import assert from "node:assert/strict";
import { BodyTooLarge, readCapped } from "./body.ts";

/** A stream of `chunks` chunks of `size` bytes, counting what was pulled and whether it was cancelled. */
function source(chunks: number, size: number) {
  const state = { pulled: 0, cancelled: false };
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent++ >= chunks) return c.close();
      state.pulled += size;
      c.enqueue(new Uint8Array(size).fill(sent & 0xff));
    },
    cancel() {
      state.cancelled = true;
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

Deno.test("readCapped() returns a body within the cap, whole and in order", async () => {
  const { stream } = source(4, 1000);
  const body = await readCapped(stream, 4000);
  assert.equal(body.length, 4000);
  assert.deepEqual([body[0], body[1000], body[3999]], [1, 2, 4]);
  assert.equal((await readCapped(null, 10)).length, 0);
});

Deno.test("readCapped() stops reading a 1 GiB stream just past the cap and cancels it", async () => {
  const { stream, state } = source(16_384, 64 * 1024); // 1 GiB in 64 KiB chunks
  await assert.rejects(
    readCapped(stream, 17 << 20),
    (e: Error) => e instanceof BodyTooLarge && e.message === `body larger than ${17 << 20} bytes`,
  );
  assert.ok(state.pulled <= (17 << 20) + 2 * 64 * 1024, `pulled ${state.pulled} bytes`);
  assert.ok(state.cancelled);
});

Deno.test("readCapped() refuses a declared Content-Length over the cap before reading", async () => {
  const { stream, state } = source(10, 1000);
  await assert.rejects(
    readCapped(stream, 100, { declared: 10_000 }),
    /body of 10000 bytes, larger than 100/,
  );
  assert.equal(state.pulled, 0);
  assert.ok(state.cancelled);
});
