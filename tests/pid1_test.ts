/**
 * beyond-pg as PID 1 of a PID namespace (the container path): it reaps orphans that hooks
 * leave behind without stealing a supervised child's exit status, and a SIGTERM (even one
 * arriving long after start, which crashes Deno as PID 1 without a listener) stops it cleanly
 * with exit code 0. Only processes inside the namespace are signalled.
 */
import assert from "node:assert/strict";
import {
  cleanup,
  descendants,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

function stat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, ppid: Number(f[1]) };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).replaceAll("\0", " ");
  } catch {
    return "";
  }
}

Deno.test("PID 1 in a PID namespace: orphans reaped, exit statuses intact, SIGTERM → clean stop, exit 0", async () => {
  const root = await tempRoot();
  Deno.mkdirSync(`${root}/hooks/post-start.d`, { recursive: true });
  const hook = (name: string, body: string) => {
    Deno.writeTextFileSync(`${root}/hooks/post-start.d/${name}`, `#!/bin/sh\n${body}\n`);
    Deno.chmodSync(`${root}/hooks/post-start.d/${name}`, 0o755);
  };
  // 20 orphans: each subshell exits at once, its sleep is re-parented to PID 1 and dies later.
  hook("10-orphans", "for i in $(seq 20); do (sleep 0.3 </dev/null >/dev/null 2>&1 &); done");
  hook("20-exit3", "exit 3");
  const pg = await startSupervisor({
    root,
    args: [], // no command: as /sbin/init is started
    wrap: ["unshare", "--pid", "--fork", "--mount-proc"],
    env: { BEYOND_PG_PLATFORM: "container" },
  });
  try {
    await pg.waitFor(/\[beyond-pg\] ready:/, 60_000);
    assert.ok(pg.lines.some((l) => l.includes("PID 1 in a container")));
    assert.ok(pg.lines.some((l) => l === "[beyond-pg] warning: hook post-start/20-exit3 exited 3"));
    // The namespace's PID 1 is unshare's only child.
    const init = descendants(pg.proc.pid).find((p) => stat(p)?.ppid === pg.proc.pid)!;
    assert.ok(
      cmdline(init).includes("main.ts") || cmdline(init).includes("beyond-pg"),
      cmdline(init),
    );

    await new Promise((r) => setTimeout(r, 2000)); // the orphans have exited by now
    const zombies = descendants(init).filter((p) => stat(p)?.state === "Z");
    assert.deepEqual(zombies, [], `zombies left: ${zombies.map((p) => `${p} ${cmdline(p)}`)}`);

    // A supervised child's exit status still reaches the supervisor (not stolen by the reaper).
    const postmaster = descendants(init).find((p) =>
      stat(p)?.ppid === init && / -D /.test(cmdline(p)) && cmdline(p).includes("postgres")
    )!;
    assert.ok(postmaster, "no postmaster found in the namespace");
    const mark = pg.lines.length;
    Deno.kill(postmaster, "SIGKILL");
    await pg.waitFor(/postgres killed by SIGKILL; restarting/, 30_000, mark);
    await pg.waitFor(/postgres is back/, 60_000, mark);
    assert.equal(await psql(pg.port, "select 1", { password: pg.password }), "1");

    // SIGTERM to the namespace's PID 1, more than a second after start.
    Deno.kill(init, "SIGTERM");
    const status = await pg.exited;
    assert.ok(
      pg.lines.some((l) => l === "[beyond-pg] stopped cleanly"),
      pg.lines.slice(-5).join("\n"),
    );
    assert.equal(status.code, 0);
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});
