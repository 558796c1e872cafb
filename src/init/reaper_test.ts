import assert from "node:assert/strict";
import { Reaper } from "./reaper.ts";
import { outputTracked } from "../process/registry.ts";

/** Keep the event loop busy, as compressing or hashing does, while a child exits. */
function busy(ms: number): void {
  const t = performance.now();
  while (performance.now() - t < ms) { /* spin */ }
}

Deno.test("reaper: children spawned through the registry keep their exit status", async () => {
  const reaper = new Reaper();
  reaper.start();
  try {
    // An untracked `new Deno.Command(...).output()` here fails with ECHILD ("No child
    // processes") within a few runs: the reaper took the status Deno was waiting for.
    for (let i = 0; i < 20; i++) {
      const pending = outputTracked(
        new Deno.Command("sh", { args: ["-c", "exit 3"], stdin: "null", stdout: "piped" }),
      );
      busy(30);
      assert.equal((await pending).code, 3);
    }
  } finally {
    reaper.stop();
  }
});
