import assert from "node:assert/strict";
import { pagesInUse, parseMeminfo, sharedMemoryBoundMb } from "./hugepages.ts";

Deno.test("parseMeminfo() and pagesInUse(): faulted-in plus reserved pages", () => {
  const info = parseMeminfo(
    "MemTotal:       24683620 kB\nHugePages_Total:     200\nHugePages_Free:      184\n" +
      "HugePages_Rsvd:      130\nHugePages_Surp:        0\nHugepagesize:       2048 kB\n",
  );
  assert.deepEqual(info, { total: 200, free: 184, reserved: 130, sizeKb: 2048 });
  assert.equal(pagesInUse(info), 146);
  assert.equal(pagesInUse(parseMeminfo("MemTotal: 1 kB\n")), 0);
});

Deno.test("sharedMemoryBoundMb() covers what postgres maps with the tuning's values", () => {
  // Measured (postgres -C shared_memory_size, PostgreSQL 15, this config): 291 MiB at 1 GiB.
  assert.ok(sharedMemoryBoundMb(1024) >= 291);
  assert.ok(sharedMemoryBoundMb(1024) <= 360);
  // shared_buffers has a 128 MiB floor.
  assert.equal(sharedMemoryBoundMb(256), 128 + 16 + 48 + 20);
});
