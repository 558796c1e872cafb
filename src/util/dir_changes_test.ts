import assert from "node:assert/strict";
import { DirChanges } from "./dir_changes.ts";

Deno.test("DirChanges: a change in the directory ends a wait at once; none lets it time out", async () => {
  const dir = await Deno.makeTempDir();
  const changes = DirChanges.open(dir);
  try {
    assert.ok(changes.watching);
    let t = performance.now();
    await changes.wait(150);
    assert.ok(performance.now() - t >= 140, "no change: the full timeout");
    // A change while waiting wakes it.
    t = performance.now();
    setTimeout(() => Deno.writeTextFileSync(`${dir}/postmaster.pid`, "1\n"), 20);
    await changes.wait(10_000);
    assert.ok(performance.now() - t < 5_000, "woken by the write");
    // A change between waits ends the next wait at once.
    await changes.wait(50); // drain what the last write raised
    Deno.writeTextFileSync(`${dir}/postmaster.pid`, "2\n");
    await new Promise((r) => setTimeout(r, 100));
    t = performance.now();
    await changes.wait(10_000);
    assert.ok(performance.now() - t < 5_000, "the change that came before the wait counts");
  } finally {
    changes.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("DirChanges: without a directory to watch every wait is the plain timeout; a stop ends it", async () => {
  const changes = DirChanges.open("/nonexistent/beyond-pg-dir-changes");
  assert.equal(changes.watching, false);
  let t = performance.now();
  await changes.wait(30);
  assert.ok(performance.now() - t >= 25);
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 20);
  t = performance.now();
  await changes.wait(10_000, stop.signal);
  assert.ok(performance.now() - t < 5_000, "the signal ends the wait");
  changes.close();
});

Deno.test("DirChanges: close() ends the watch (no pending read keeps the process alive)", async () => {
  const dir = await Deno.makeTempDir();
  const changes = DirChanges.open(dir);
  await changes.wait(10);
  changes.close();
  assert.equal(changes.watching, false);
  await changes.wait(10); // a plain timeout now
  await Deno.remove(dir, { recursive: true });
});
