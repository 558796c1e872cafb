import assert from "node:assert/strict";
import { nextRestart } from "./backoff.ts";
import { lastProblemLine } from "./exit.ts";
import { parsePostmasterPid } from "./postmaster_pid.ts";
import { deriveState, type Facts } from "./state.ts";
import { blameUserConf, settingNames } from "./user_conf.ts";

Deno.test("nextRestart() doubles from 500 ms to a 30 s cap and reports a crash loop at 3", () => {
  let failures = 0;
  const delays: number[] = [];
  const loops: boolean[] = [];
  for (let i = 0; i < 9; i++) {
    const d = nextRestart(failures, 100);
    failures = d.failures;
    delays.push(d.delayMs);
    loops.push(d.crashLoop);
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  assert.deepEqual(loops.slice(0, 4), [false, false, true, true]);
});

Deno.test("nextRestart() starts over after a child ran for a stable minute", () => {
  assert.deepEqual(nextRestart(7, 60_000), { delayMs: 500, failures: 1, crashLoop: false });
});

Deno.test("parsePostmasterPid() reads pid, port and the padded status line", () => {
  const text =
    "4242\n/data/main\n1700000000\n5433\n/var/run/postgresql\n127.0.0.1\n  123   4\nready   \n";
  assert.deepEqual(parsePostmasterPid(text), {
    pid: 4242,
    dataDir: "/data/main",
    port: 5433,
    socketDir: "/var/run/postgresql",
    status: "ready",
  });
  assert.equal(parsePostmasterPid(""), undefined);
});

const up: Facts = {
  phase: "up",
  postgresUp: true,
  pgbouncerUp: true,
  quarantined: undefined,
  problem: undefined,
};

Deno.test("deriveState() running, degraded, safe-mode, stopping", () => {
  assert.equal(deriveState(up).state, "running");
  assert.deepEqual(deriveState({ ...up, postgresUp: false }), {
    state: "degraded",
    reason: "postgres restarting",
  });
  assert.equal(deriveState({ ...up, quarantined: "/x/99-user.conf.bad-1" }).state, "safe-mode");
  assert.equal(deriveState({ ...up, phase: "stopping" }).state, "stopping");
  assert.equal(deriveState({ ...up, phase: "starting", problem: "port busy" }).reason, "port busy");
});

Deno.test("settingNames() ignores comments and blank lines", () => {
  assert.deepEqual(settingNames("# x = 1\nshared_buffers = '99TB' # big\n\nwork_mem 4MB\n"), [
    "shared_buffers",
    "work_mem",
  ]);
});

Deno.test("blameUserConf() when postgres names the file", () => {
  assert.equal(
    blameUserConf(
      ['LOG:  unrecognized configuration parameter "nope" in file "/d/main/conf.d/99-user.conf" line 1'],
      "nope = 1\n",
    ),
    true,
  );
});

Deno.test("blameUserConf() when the failure names a setting the user file assigns", () => {
  const tail = [
    "FATAL:  could not map anonymous shared memory: Cannot allocate memory",
    "HINT:  This error usually means that PostgreSQL's request ... Reduce the request size (currently 109951162777600 bytes), perhaps by reducing shared_buffers or max_connections.",
  ];
  assert.equal(blameUserConf(tail, "shared_buffers = '100TB'\n"), true);
  assert.equal(blameUserConf(tail, "work_mem = '4MB'\n"), false);
  assert.equal(blameUserConf(tail, "# nothing\n"), false);
});

Deno.test("blameUserConf() not for an unrelated failure", () => {
  assert.equal(
    blameUserConf(['FATAL:  lock file "postmaster.pid" already exists'], "work_mem = '4MB'\n"),
    false,
  );
});

import { pgbouncerSignals } from "./pgbouncer_signals.ts";

Deno.test("pgbouncerSignals() immediate shutdown is SIGTERM before 1.23 and SIGQUIT after", () => {
  assert.deepEqual(pgbouncerSignals("1.18.0"), { safe: "SIGINT", immediate: "SIGTERM" });
  assert.deepEqual(pgbouncerSignals("1.24.1"), { safe: "SIGINT", immediate: "SIGQUIT" });
});

Deno.test("lastProblemLine: the server's own FATAL wins over a client's symptom after it", () => {
  const tail = [
    "2026-11-23 18:04:21.943 UTC [29686] FATAL:  recovery ended before configured recovery target was reached",
    "2026-11-23 18:04:21.946 UTC [29683] LOG:  startup process (PID 29686) exited with exit code 1",
    "2026-11-23 18:04:21.948 UTC [29747] [[unknown]] db=postgres,user=postgres,client=[local] FATAL:  the database system is in recovery mode",
    "2026-11-23 18:04:21.958 UTC [29683] LOG:  database system is shut down",
  ];
  assert.equal(
    lastProblemLine(tail),
    "FATAL: recovery ended before configured recovery target was reached",
  );
  // A custom log_line_prefix: the message itself still marks the client's line.
  assert.equal(
    lastProblemLine([
      "LOG: x",
      'FATAL:  could not open file "base/1/2"',
      "FATAL:  the database system is starting up",
    ]),
    'FATAL: could not open file "base/1/2"',
  );
  // Only client lines: the last one is still better than nothing.
  assert.equal(
    lastProblemLine(["x db=a,user=b,client=c FATAL:  password authentication failed"]),
    "FATAL: password authentication failed",
  );
  assert.equal(lastProblemLine([]), "no output");
  assert.equal(lastProblemLine(["plain last line"]), "plain last line");
});
