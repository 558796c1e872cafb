import assert from "node:assert/strict";
import { decide, initialPolicyState } from "./policy.ts";

const exited = (code: number, signal: Deno.Signal | null = null) => ({ code, signal });
const run = { failFast: false };

Deno.test("decide(): a quick exit restarts after a doubling delay; the third is a crash loop", () => {
  let state = initialPolicyState;
  const delays: number[] = [];
  let crash = false;
  for (let i = 0; i < 3; i++) {
    const r = decide(
      "postgres",
      state,
      { kind: "exited", status: exited(1), ranMs: 100, tail: [] },
      run,
    );
    state = r.state;
    assert.equal(r.action.kind, "restart");
    if (r.action.kind === "restart") (delays.push(r.action.delayMs), crash = r.action.crashLoop);
  }
  assert.deepEqual(delays, [500, 1000, 2000]);
  assert.equal(crash, true);
  // A child that ran a minute starts over.
  const r = decide("postgres", state, {
    kind: "exited",
    status: exited(1),
    ranMs: 61_000,
    tail: [],
  }, run);
  assert.equal(r.action.kind === "restart" && r.action.delayMs, 500);
});

Deno.test("decide(): 99-user.conf to blame is quarantined once, then it is a plain restart", () => {
  const tail = ['FATAL:  invalid value for parameter "work_mem": "lots"'];
  const event = {
    kind: "start-failed" as const,
    status: exited(1),
    ranMs: 50,
    tail,
    userConf: { text: "work_mem = lots\n", quarantined: false },
  };
  assert.equal(decide("postgres", initialPolicyState, event, run).action.kind, "quarantine");
  const again = decide("postgres", initialPolicyState, {
    ...event,
    userConf: { ...event.userConf, quarantined: true },
  }, run);
  assert.equal(again.action.kind, "restart");
  assert.match(
    (again.action as { problem: string }).problem,
    /^postgres did not start \(exited 1\): FATAL/,
  );
});

Deno.test("decide(): under fail-fast (restore) any stop is a failure with postgres's reason", () => {
  const r = decide("postgres", initialPolicyState, {
    kind: "start-failed",
    status: exited(1),
    ranMs: 10,
    tail: ["FATAL:  recovery ended before configured recovery target was reached"],
  }, { failFast: true });
  assert.deepEqual(r.action, {
    kind: "fail",
    problem:
      "postgres stopped (exited 1): FATAL: recovery ended before configured recovery target was reached",
  });
});

Deno.test("decide(): a spawn error is retried with backoff and named", () => {
  const r = decide("PgBouncer", initialPolicyState, { kind: "spawn-failed", error: "ENOENT" }, run);
  assert.deepEqual(r.action, {
    kind: "restart",
    delayMs: 500,
    crashLoop: false,
    problem: "cannot start PgBouncer: ENOENT",
  });
});
