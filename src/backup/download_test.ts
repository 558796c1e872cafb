import assert from "node:assert/strict";
import { rangesOf } from "./download.ts";

const MiB = 1 << 20;

Deno.test("rangesOf(): the parts when the manifest lists their hashes, else 16 MiB chunks", () => {
  assert.deepEqual(rangesOf(40 * MiB, {}).map((r) => [r.start / MiB, r.end / MiB]), [
    [0, 16],
    [16, 32],
    [32, 40],
  ]);
  assert.deepEqual(
    rangesOf(40 * MiB, { partSize: 16 * MiB, partSha256: ["a", "b", "c"] }).map((r) => [
      r.start / MiB,
      r.end / MiB,
      r.sha256,
    ]),
    [[0, 16, "a"], [16, 32, "b"], [32, 40, "c"]],
  );
  assert.deepEqual(rangesOf(0, {}), []);
});
