import assert from "node:assert/strict";
import { clamp, computeTuning } from "./tuning.ts";

const pool = 20;
const rams = [512, 2048, 16384, 262144]; // 512 MiB, 2, 16, 256 GiB
const cpus = [1, 2, 8, 64];

Deno.test("computeTuning() shared_buffers = max(128, ram/4) MB", () => {
  assert.deepEqual(
    rams.map((ramMb) => computeTuning({ ramMb, vcpus: 2, poolSize: pool }).sharedBuffersMb),
    [
      128,
      512,
      4096,
      65536,
    ],
  );
});

Deno.test("computeTuning() effective_cache_size = ram*3/4 MB", () => {
  assert.deepEqual(
    rams.map((ramMb) => computeTuning({ ramMb, vcpus: 2, poolSize: pool }).effectiveCacheSizeMb),
    [384, 1536, 12288, 196608],
  );
});

Deno.test("computeTuning() caps maintenance_work_mem at 2 GiB (min(ram/20, 2048))", () => {
  assert.deepEqual(
    rams.map((ramMb) => computeTuning({ ramMb, vcpus: 2, poolSize: pool }).maintenanceWorkMemMb),
    [25, 102, 819, 2048],
  );
});

Deno.test("computeTuning() work_mem = max(32, ram/2/(pool*3)) MB", () => {
  assert.deepEqual(
    rams.map((ramMb) => computeTuning({ ramMb, vcpus: 2, poolSize: pool }).workMemMb),
    [
      32,
      32,
      136,
      2184,
    ],
  );
});

Deno.test("computeTuning() max_connections = clamp(pool+vcpus*2+10, 100, ram/50)", () => {
  const grid = rams.map((ramMb) =>
    cpus.map((vcpus) => computeTuning({ ramMb, vcpus, poolSize: pool }).maxConnections)
  );
  // pool+vcpus*2+10 is 32, 34, 46, 158; the floor of 100 wins below 158.
  assert.deepEqual(grid, [
    [100, 100, 100, 100],
    [100, 100, 100, 100],
    [100, 100, 100, 158],
    [100, 100, 100, 158],
  ]);
});

Deno.test("computeTuning() wal_buffers = clamp(shared_buffers/32, 1, 16) MB", () => {
  assert.deepEqual(
    rams.map((ramMb) => computeTuning({ ramMb, vcpus: 2, poolSize: pool }).walBuffersMb),
    [
      4,
      16,
      16,
      16,
    ],
  );
});

Deno.test("computeTuning() vCPU-derived workers at 1/2/8/64 vCPUs", () => {
  const rows = cpus.map((vcpus) => {
    const t = computeTuning({ ramMb: 2048, vcpus, poolSize: pool });
    return [
      t.maxWorkerProcesses,
      t.maxParallelWorkers,
      t.maxParallelWorkersPerGather,
      t.maxParallelMaintenanceWorkers,
    ];
  });
  assert.deepEqual(rows, [
    [8, 1, 1, 1],
    [8, 2, 1, 1],
    [12, 8, 4, 4],
    [68, 64, 4, 4],
  ]);
});

Deno.test("clamp() lets the floor win when the ceiling is below it", () => {
  assert.equal(clamp(34, 100, 10), 100);
  assert.equal(clamp(500, 100, 200), 200);
  assert.equal(clamp(150, 100, 200), 150);
});
