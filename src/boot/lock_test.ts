import assert from "node:assert/strict";
import { PgTree } from "../fs/tree.ts";
import { lockDataRoot, VolumeLock } from "./lock.ts";

async function withRoot(fn: (tree: PgTree, path: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bpg-lock-" });
  try {
    await fn(new PgTree(dir, undefined), `${dir}/.beyond-pg.lock`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the volume lock: one holder; the next one waits its bound, then a one-line error", async () => {
  await withRoot(async (tree, path) => {
    const first = await lockDataRoot(tree, path);
    const t0 = performance.now();
    await assert.rejects(
      () => lockDataRoot(tree, path, 150),
      /^OperatorError: Cannot start: another beyond-pg holds .*\.beyond-pg\.lock; stop it first/,
    );
    assert.ok(performance.now() - t0 >= 140);
    first.close();
    const second = await lockDataRoot(tree, path, 150);
    second.close();
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
  });
});

Deno.test("the volume lock: a waiter gets it as soon as the holder lets go (a handoff)", async () => {
  await withRoot(async (tree, path) => {
    const old = new VolumeLock(await lockDataRoot(tree, path), () => lockDataRoot(tree, path));
    const waiting = lockDataRoot(tree, path, 5000);
    setTimeout(() => old.release(), 100);
    const next = await waiting;
    assert.equal(old.held, false);
    await assert.rejects(() => old.reacquire(), /another beyond-pg holds/);
    next.close();
    await old.reacquire();
    assert.equal(old.held, true);
    old.close();
  });
});
