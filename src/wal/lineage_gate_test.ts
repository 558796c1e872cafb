import assert from "node:assert/strict";
import { LineageGate, type LineagePorts } from "./lineage_gate.ts";
import type { OwnerRecord } from "./archive.ts";
import { setLogWriter } from "../util/log.ts";

/** A prefix in memory: the owner record, the archived history files, this cluster's own. */
function fakes(
  o: { ownerTimeline: number; archived?: Record<number, string>; local?: Record<number, string> },
) {
  let record: OwnerRecord = { system_identifier: "1", major: 15, timeline: o.ownerTimeline };
  let now = 0;
  const ports: LineagePorts = {
    readOwner: () => Promise.resolve(record),
    writeOwner: (r) => Promise.resolve(void (record = r)),
    lineageOf: (t) =>
      Promise.resolve({
        timeline: t,
        ancestors: (o.archived?.[t] ?? "").split("\n").filter(Boolean).map((l) => {
          const [tl, lsn] = l.split("\t");
          const [hi, lo] = lsn!.split("/");
          return { timeline: Number(tl), end: (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`) };
        }),
      }),
    localHistory: (t) => Promise.resolve(o.local?.[t]),
    now: () => now,
  };
  return { ports, record: () => record, tick: (ms: number) => (now += ms) };
}

const quiet = () => setLogWriter(() => {});

Deno.test("LineageGate: a test restore's timeline is a branch: skipped, counted, said once a minute", async () => {
  const lines: string[] = [];
  const previous = setLogWriter((l) => lines.push(l));
  try {
    const f = fakes({ ownerTimeline: 1, local: { 2: "1\t0/3000000\tbranch\n" } });
    const gate = new LineageGate(f.ports, { promote: false });
    assert.equal((await gate.decide("00000002.history")).action, "skip");
    assert.equal((await gate.decide("000000020000000000000004")).action, "skip");
    assert.equal(gate.state.role, "branch");
    assert.equal(gate.state.skippedTotal, 2);
    assert.equal(lines.filter((l) => /not storing/.test(l)).length, 1);
    assert.equal(f.record().timeline, 1, "the owner record is untouched");
  } finally {
    setLogWriter(previous);
  }
});

Deno.test("LineageGate: told it is the primary, the record moves to its timeline before its first file", async () => {
  const previous = quiet();
  try {
    const f = fakes({ ownerTimeline: 1, local: { 2: "1\t0/3000000\tpromoted\n" } });
    const gate = new LineageGate(f.ports, { promote: true });
    assert.equal((await gate.decide("00000002.history")).action, "archive");
    assert.equal(f.record().timeline, 2);
    assert.equal((await gate.decide("000000020000000000000004")).action, "archive");
    // Its own timeline-1 segment before the switch is still part of the lineage.
    assert.equal((await gate.decide("000000010000000000000002")).action, "archive");
  } finally {
    setLogWriter(previous);
  }
});

Deno.test("LineageGate: an old primary learns within a minute that it was taken over (fenced)", async () => {
  const previous = quiet();
  try {
    const f = fakes({ ownerTimeline: 1, archived: { 2: "1\t0/5000000\tfailover\n" } });
    const gate = new LineageGate(f.ports, { promote: false });
    assert.equal((await gate.decide("000000010000000000000006")).action, "archive");
    await f.ports.writeOwner({ ...f.record(), timeline: 2 }); // another cluster took over
    assert.equal((await gate.decide("000000010000000000000007")).action, "archive", "cached");
    f.tick(61_000);
    const d = await gate.decide("000000010000000000000008");
    assert.equal(d.action, "refuse");
    assert.equal(gate.state.role, "fenced");
  } finally {
    setLogWriter(previous);
  }
});
