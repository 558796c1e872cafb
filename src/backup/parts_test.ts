import assert from "node:assert/strict";
import { MAX_OBJECT_BYTES, MAX_PART_BYTES, MAX_PARTS, MiB, partSize, planParts } from "./parts.ts";

const GiB = 1024 * MiB;

Deno.test("planParts(): 16 MiB parts up to ~120 GiB, larger beyond, always under 10,000 parts", () => {
  assert.deepEqual(planParts(1 * GiB), { partBytes: 16 * MiB, parallel: 4 });
  assert.deepEqual(planParts(100 * GiB), { partBytes: 16 * MiB, parallel: 4 });
  const big = planParts(1024 * GiB) as { partBytes: number; parallel: number };
  assert.equal(big.partBytes, 140 * MiB);
  assert.equal(big.parallel, 1, "256 MiB of buffers hold one 140 MiB part at a time");
  // The old fixed 16 MiB parts stopped at 156 GiB; the plan covers the size with growth.
  for (const size of [156 * GiB, 500 * GiB, 4000 * GiB]) {
    const p = planParts(size) as { partBytes: number };
    assert.ok((size * 1.2) / p.partBytes <= 9_000, `${size / GiB} GiB`);
  }
});

Deno.test("planParts(): a cluster that cannot fit in one S3 object is refused before starting", () => {
  const r = planParts(MAX_OBJECT_BYTES);
  assert.equal(typeof r, "string");
  assert.match(r as string, /could exceed S3's limit of 5 TiB per object/);
});

Deno.test("partSize(): parts past 9,000 grow so that even twice the plan ends by part 10,000", () => {
  assert.equal(partSize(1, 16 * MiB), 16 * MiB);
  assert.equal(partSize(9_000, 16 * MiB), 16 * MiB);
  assert.equal(partSize(9_001, 16 * MiB), 32 * MiB);
  assert.equal(partSize(9_101, 16 * MiB), 64 * MiB);
  assert.equal(partSize(MAX_PARTS + 1, 16 * MiB), undefined);
  assert.equal(partSize(9_999, 4 * GiB), MAX_PART_BYTES);
  let total = 0;
  for (let n = 1; n <= MAX_PARTS; n++) total += partSize(n, 16 * MiB)!;
  assert.ok(total > 2 * 9_000 * 16 * MiB, `${(total / GiB).toFixed(0)} GiB fit`);
});
