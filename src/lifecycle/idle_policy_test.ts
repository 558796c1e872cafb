import assert from "node:assert/strict";
import { busyReason, decideIdle, type IdleFacts, sampleEveryMs } from "./idle_policy.ts";

const idle: IdleFacts = {
  clients: 0,
  direct: 0,
  backups: 0,
  senders: 0,
  archiveBacklog: 0,
  inRecovery: false,
  handoff: false,
};
const start = { lastActivityMs: 0, lastClientMs: undefined };

Deno.test("idle: stops only after the whole time with nothing going on", () => {
  let d = decideIdle(60, start, idle, 30_000);
  assert.equal(d.stop, false);
  assert.equal(d.reason, "idle for 30 s of 60 s");
  d = decideIdle(60, d.state, idle, 60_000);
  assert.equal(d.stop, true);
  assert.equal(d.reason, "idle for 60 s");
});

Deno.test("idle: a client restarts the count and is remembered as the last activity", () => {
  const d = decideIdle(60, start, { ...idle, clients: 2 }, 50_000);
  assert.equal(d.stop, false);
  assert.equal(d.reason, "2 client sessions on the pooled port");
  assert.deepEqual(d.state, { lastActivityMs: 50_000, lastClientMs: 50_000 });
  const later = decideIdle(60, d.state, idle, 100_000);
  assert.equal(later.stop, false);
  assert.equal(later.idleSeconds, 50);
  assert.equal(decideIdle(60, later.state, idle, 110_000).stop, true);
});

Deno.test("idle: never while a backup, replica, sink, backlog, recovery or handoff keeps it up", () => {
  const cases: [Partial<IdleFacts>, RegExp][] = [
    [{ direct: 1 }, /1 client session on the direct port/],
    [{ backups: 1 }, /base backup/],
    [{ senders: 2 }, /2 replicas or WAL sinks attached/],
    [{ archiveBacklog: 3 }, /3 WAL files waiting to be archived/],
    [{ inRecovery: true }, /in recovery/],
    [{ handoff: true }, /handoff/],
    [{ unknown: "postgres is down" }, /cannot be read: postgres is down/],
  ];
  for (const [f, reason] of cases) {
    const d = decideIdle(5, start, { ...idle, ...f }, 3_600_000);
    assert.equal(d.stop, false, JSON.stringify(f));
    assert.match(d.reason, reason);
    assert.equal(d.state.lastActivityMs, 3_600_000);
  }
  // Unknown facts are not a client.
  assert.equal(
    decideIdle(5, start, { ...idle, unknown: "x" }, 10).state.lastClientMs,
    undefined,
  );
});

Deno.test("idle: off never stops, but still reports", () => {
  const d = decideIdle(undefined, start, idle, 10_000_000);
  assert.equal(d.stop, false);
  assert.equal(d.reason, "idle shutdown is off");
  assert.equal(busyReason(idle), undefined);
});

Deno.test("idle: samples between 1 and 5 s", () => {
  assert.equal(sampleEveryMs(5), 1000);
  assert.equal(sampleEveryMs(30), 3000);
  assert.equal(sampleEveryMs(3600), 5000);
});
