import assert from "node:assert/strict";
import { planFdLimit } from "./fd_limit.ts";

Deno.test("planFdLimit() raises the soft limit to the hard one, at most 65536", () => {
  assert.deepEqual(planFdLimit({ soft: 1024, hard: 4096 }, { root: false }), {
    soft: 4096,
    hard: 4096,
  });
  assert.deepEqual(planFdLimit({ soft: 1024, hard: 524288 }, { root: false }), {
    soft: 65536,
    hard: 524288,
  });
  assert.deepEqual(planFdLimit({ soft: 1024, hard: Infinity }, { root: false }), {
    soft: 65536,
    hard: Infinity,
  });
});

Deno.test("planFdLimit() as root raises the hard limit to 65536 too, never lowers either", () => {
  assert.deepEqual(planFdLimit({ soft: 1024, hard: 4096 }, { root: true }), {
    soft: 65536,
    hard: 65536,
  });
  assert.deepEqual(planFdLimit({ soft: 100_000, hard: 200_000 }, { root: true }), undefined);
  assert.deepEqual(planFdLimit({ soft: 1024, hard: 200_000 }, { root: true }), {
    soft: 65536,
    hard: 200_000,
  });
  assert.equal(planFdLimit({ soft: 65536, hard: 65536 }, { root: true }), undefined);
});
