/**
 * The operator surface against a real supervisor, postgres and PgBouncer: control commands over
 * the Unix socket, protocol abuse on the live server, HTTP health and metrics (promtool).
 */
import assert from "node:assert/strict";
import { ControlClient } from "../src/rpc/client.ts";
import { encodeFrame, FrameDecoder } from "../src/rpc/codec.ts";
import { control, http, ok } from "./support/control.ts";
import {
  cleanup,
  postmasterPid,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;

Deno.test("control: status, health, checkpoint, reload, drain/resume, hot-set on a running supervisor", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    // The socket is private.
    assert.equal((Deno.statSync(pg.controlSocket).mode ?? 0) & 0o777, 0o600);
    assert.equal((Deno.statSync(`${pg.root}/run/control`).mode ?? 0) & 0o777, 0o700);

    const status = await ok<
      { state: string; ports: { pgbouncer: number }; phases: Record<string, number> }
    >(pg, "status");
    assert.equal(status.state, "running");
    assert.equal(status.ports.pgbouncer, pg.port);
    assert.ok(status.phases["total_ms"]! > 0);

    const health = await ok<{ ok: boolean }>(pg, "health");
    assert.equal(health.ok, true);

    const cp = await ok<{ checkpointsRequestedBefore: number; checkpointsRequestedAfter: number }>(
      pg,
      "checkpoint",
    );
    assert.ok(cp.checkpointsRequestedAfter > cp.checkpointsRequestedBefore, JSON.stringify(cp));

    // reload applies a SIGHUP setting from 99-user.conf, and reports a restart-only one as pending.
    Deno.writeTextFileSync(
      `${pg.pgdata}/conf.d/99-user.conf`,
      "work_mem = '7MB'\nmax_locks_per_transaction = 300\n",
    );
    const reload = await ok<{ pendingRestart: string[]; errors: unknown[] }>(pg, "reload");
    assert.deepEqual(reload.errors, []);
    assert.deepEqual(reload.pendingRestart, ["max_locks_per_transaction"]);
    assert.equal(await psql(pg.directPort, "show work_mem", { password: pg.password }), "7MB");

    // drain: a new query waits; resume lets it complete.
    await ok(pg, "drain");
    let done = false;
    const waiting = psql(pg.port, "select 42", { password: pg.password }).then((
      v,
    ) => ((done = true), v));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(done, false, "a query ran while PgBouncer was paused");
    await ok(pg, "resume");
    assert.equal(await waiting, "42");

    const hot = await ok<{ files: { path: string; bytes: number; why: string }[] }>(pg, "hot-set");
    assert.ok(hot.files.length >= 10);
    for (const f of hot.files) assert.ok(Deno.statSync(f.path).isFile, f.path);
    assert.ok(hot.files.some((f) => f.path.endsWith("/global/pg_control")));
    assert.ok(hot.files.some((f) => f.why.startsWith("pg_class")));
    assert.ok(hot.files.some((f) => f.why === "recent WAL"));

    const backup = await control(pg, "backup");
    assert.equal(backup.ok, false);
    assert.equal(!backup.ok && backup.error.code, "unavailable");
    assert.equal(await pg.stop(), 0);
  } finally {
    await cleanup(pg);
  }
});

Deno.test("control: status shows safe-mode after a bad 99-user.conf", async () => {
  const first = await startSupervisor();
  try {
    await first.waitFor(READY);
    assert.equal(await first.stop(), 0);
    Deno.writeTextFileSync(`${first.pgdata}/conf.d/99-user.conf`, "shared_buffers = 'nonsense'\n");
    const second = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
    });
    try {
      await second.waitFor(READY);
      const status = await ok<{ state: string; reason: string; quarantined: string }>(
        second,
        "status",
      );
      assert.equal(status.state, "safe-mode");
      assert.match(status.reason, /99-user.conf broke startup/);
      assert.match(status.quarantined, /99-user\.conf\.bad-/);
      // Put a fixed file back and reload: safe mode ends.
      Deno.writeTextFileSync(`${first.pgdata}/conf.d/99-user.conf`, "work_mem = '8MB'\n");
      const reload = await ok<{ state: string }>(second, "reload");
      assert.equal(reload.state, "running");
    } finally {
      await cleanup(second);
    }
  } finally {
    await cleanup(first);
  }
});

Deno.test("control: broken frames on the live server get an error or a close; the server keeps serving", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 200; i++) {
      const client = await ControlClient.unix(pg.controlSocket);
      try {
        let bytes: Uint8Array<ArrayBuffer>;
        if (i % 3 === 0) {
          bytes = new Uint8Array(1 + Math.floor(rand() * 40)).map(() => Math.floor(rand() * 256));
        } else if (i % 3 === 1) {
          bytes = encodeFrame({ v: 1, id: i, cmd: "status" }).subarray(
            0,
            3 + Math.floor(rand() * 10),
          );
        } else {bytes = encodeFrame({
            v: i % 2 ? 99 : 1,
            id: i,
            cmd: i % 2 ? "status" : "definitely-not-a-command",
          });}
        await client.sendRaw(bytes);
        const d = new FrameDecoder();
        d.push(bytes);
        if (d.next().kind === "need-more") {
          client.close(); // an incomplete frame, then gone: the server must just drop it
          continue;
        }
        const res = await client.receive(5000).catch(() => null);
        if (res) assert.equal(res.ok, false);
      } finally {
        client.close();
      }
    }
    // Oversized frame: refused before it is read.
    const big = await ControlClient.unix(pg.controlSocket);
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, 100 * 1024 * 1024, false);
    await big.sendRaw(header);
    const res = await big.receive(5000);
    assert.equal(res && !res.ok && res.error.code, "too_large");
    assert.equal(await big.receive(5000), null); // and closed
    big.close();
    assert.equal((await ok<{ state: string }>(pg, "status")).state, "running");
  } finally {
    await cleanup(pg);
  }
});

Deno.test("http: /readyz false before PgBouncer is up and after postgres dies, true again after restart", async () => {
  const root = await tempRoot();
  Deno.mkdirSync(`${root}/hooks/post-start.d`, { recursive: true });
  Deno.writeTextFileSync(`${root}/hooks/post-start.d/10-slow`, "#!/bin/sh\nsleep 3\n");
  Deno.chmodSync(`${root}/hooks/post-start.d/10-slow`, 0o755);
  const pg = await startSupervisor({ root });
  try {
    // During the slow post-start hook postgres is up but PgBouncer is not.
    let before: { status: number; body: string } | undefined;
    for (let i = 0; i < 100 && !before; i++) {
      try {
        before = await http(pg, "/readyz");
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.equal(before?.status, 503);
    assert.equal((await http(pg, "/healthz")).status, 200);
    await pg.waitFor(READY);
    assert.equal((await http(pg, "/readyz")).status, 200);

    Deno.kill(postmasterPid(pg.pgdata), "SIGKILL");
    let sawNotReady = false;
    const polls: string[] = [];
    for (let i = 0; i < 50 && !sawNotReady; i++) {
      const t0 = performance.now();
      const r = await http(pg, "/readyz");
      polls.push(`${r.status} after ${Math.round(performance.now() - t0)} ms: ${r.body.trim()}`);
      sawNotReady = r.status === 503;
      if (!sawNotReady) await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(
      sawNotReady,
      `/readyz stayed ready after postgres was killed:\n${polls.join("\n")}\n${
        pg.lines.slice(-15).join("\n")
      }`,
    );
    // (PgBouncer saw server logins fail meanwhile: server_login_retry = 1 lets 5432 serve again
    // within a second of postgres being back, not after PgBouncer's default 15 s.)
    const metricsDown = await http(pg, "/metrics");
    assert.equal(metricsDown.status, 200);
    await pg.waitFor(/postgres is back/, 60_000);
    let ready = false;
    let last = "";
    for (let i = 0; i < 100 && !ready; i++) {
      const r = await http(pg, "/readyz");
      ready = r.status === 200;
      last = r.body;
      if (!ready) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(
      ready,
      `/readyz did not come back: ${last.trim()}\n${pg.lines.slice(-15).join("\n")}`,
    );
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("http: /metrics passes promtool check metrics and has the families operators need", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    await psql(pg.port, "select 1", { password: pg.password });
    const { status, body } = await http(pg, "/metrics");
    assert.equal(status, 200);
    const promtool = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
    const w = promtool.stdin.getWriter();
    await w.write(new TextEncoder().encode(body));
    await w.close();
    const out = await promtool.output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `promtool: ${text}`);
    assert.equal(text.trim(), "", `promtool lint: ${text}`);
    for (
      const name of [
        "beyond_pg_up 1",
        "beyond_pg_pgbouncer_up 1",
        'beyond_pg_startup_phase_seconds{phase="total"}',
        'beyond_pg_child_restarts_total{child="postgres"} 0',
        "beyond_pg_connections{",
        "beyond_pg_pgbouncer_pool_servers{",
        "beyond_pg_archiver_archived_total",
        "beyond_pg_wal_bytes_total",
        "beyond_pg_checkpoints_timed_total",
        "beyond_pg_checkpoints_requested_total",
      ]
    ) assert.ok(body.includes(name), `missing ${name}`);
  } finally {
    await cleanup(pg);
  }
});
