/**
 * The failover drill (issue 15): primary + 2 replicas, `ANY 1 (r1, r2)`, kill -9 of the
 * primary's whole process tree, a test-side control plane that promotes the replica with the
 * highest flush LSN, re-points the other and rejoins the old primary with pg_rewind. Every
 * acknowledged commit is on the new primary, all three converge, and the archive has no hole
 * and no overwrite across the timeline switch — also when the kill comes right after a segment
 * switch. bench/replication.ts times it (median of 5).
 */
import assert from "node:assert/strict";
import { cleanup, type Instance } from "./support/harness.ts";
import { runDrill } from "./support/drill.ts";

for (const level of ["remote_write", "on"] as const) {
  Deno.test(`failover drill (${level}): zero acknowledged commits lost, all converge, the archive is continuous`, async () => {
    const nodes: Instance[] = [];
    try {
      // One drill kills at a random moment, the other right after a segment switch (the
      // old timeline then often ends at a segment boundary: its last segment must be stored
      // by the new primary, postgres marks it for nobody).
      const r = await runDrill({
        level,
        killAfterSwitch: level === "on",
        log: (l) => console.log(`drill: ${l}`),
      }, nodes);
      console.log(
        `drill (${level}): ${r.acked} acknowledged, ${r.lost.length} lost; failover ${
          Math.round(r.failoverMs)
        } ms (promote ${r.promoteMs} ms), quorum back ${
          Math.round(r.quorumMs)
        } ms; timeline 1 ended at ${r.archive.switchPoint}${
          r.archive.atBoundary ? " (a segment boundary)" : ""
        }${
          r.archive.storedAfterPromotion
            ? `; ${r.archive.storedAfterPromotion} stored by the new primary (marked for nobody)`
            : ""
        }`,
      );
      assert.ok(r.acked > 50, `only ${r.acked} commits`);
      assert.deepEqual(r.lost, [], "acknowledged ids missing on the new primary");
      assert.equal(r.counts.other, r.counts.primary);
      assert.equal(r.counts.oldPrimary, r.counts.primary);
      assert.ok(r.rewound, "the old primary was rewound");
      assert.ok(r.archive.historyStored, "00000002.history stored");
      assert.equal(r.archive.ownerTimeline, 2);
      assert.ok(r.archive.chain.ok, !r.archive.chain.ok ? r.archive.chain.problem : "");
      assert.deepEqual(r.archive.overwritten, []);
    } finally {
      await cleanup(...nodes);
    }
  });
}
