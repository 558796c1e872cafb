import assert from "node:assert/strict";
import { command, commandSpec } from "./command.ts";

const root = Deno.uid() === 0;
const pg = (() => {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith("postgres:")
  );
  const f = line?.split(":");
  return f ? { uid: Number(f[2]), gid: Number(f[3]) } : undefined;
})();

Deno.test("command(): a child run as postgres goes through setpriv (no fork of this process); with a cwd, or as non-root, Deno's own uid/gid", () => {
  const as = commandSpec("zstd", { args: ["-q", "f"], uid: 101, gid: 104 });
  if (root) {
    assert.match(String(as.cmd), /\/setpriv$/);
    assert.deepEqual(as.options.args, [
      "--reuid=101",
      "--regid=104",
      "--clear-groups",
      "--",
      "zstd",
      "-q",
      "f",
    ]);
    assert.equal(as.options.uid, undefined);
    assert.equal(as.options.gid, undefined);
  }
  const inDir = commandSpec("postgres", { uid: 101, gid: 104, cwd: "/tmp" });
  assert.equal(inDir.cmd, "postgres");
  assert.equal(inDir.options.uid, 101);
  const plain = commandSpec("true", {});
  assert.equal(plain.cmd, "true");
  assert.equal(plain.options.clearEnv, true);
});

Deno.test({
  name: "command(): the setpriv way runs the child as the user, with its group only",
  ignore: !root || !pg,
  fn: async () => {
    for (const cwd of [undefined, "/"]) {
      const out = await command("sh", {
        args: ["-c", "id -u; id -g; id -G; echo $$"],
        uid: pg!.uid,
        gid: pg!.gid,
        ...(cwd ? { cwd } : {}),
        stdout: "piped",
      }).output();
      assert.ok(out.success);
      const [u, g, groups] = new TextDecoder().decode(out.stdout).trim().split("\n");
      assert.equal(Number(u), pg!.uid);
      assert.equal(Number(g), pg!.gid);
      assert.equal(groups, String(pg!.gid), "no supplementary groups");
    }
  },
});

Deno.test("command(): a child in its own session goes through setsid (no fork of this process), before setpriv", () => {
  const own = commandSpec("/usr/bin/env", { args: ["true"], detached: true });
  if (!own.cmd.toString().endsWith("/setsid")) return; // no util-linux setsid: Deno's own way
  assert.deepEqual(own.options.args, ["--", "/usr/bin/env", "true"]);
  assert.equal(own.options.detached, undefined);
  // Where command() has a setpriv to use (root, util-linux), it comes after setsid.
  const setpriv = String(commandSpec("true", { uid: 101, gid: 104 }).cmd).endsWith("/setpriv");
  if (setpriv) {
    const as = commandSpec("postgres", { args: ["-D", "d"], uid: 101, gid: 104, detached: true });
    assert.match(String(as.cmd), /\/setsid$/);
    assert.match(as.options.args![1]!, /\/setpriv$/);
    assert.deepEqual(as.options.args!.slice(2), [
      "--reuid=101",
      "--regid=104",
      "--clear-groups",
      "--",
      "postgres",
      "-D",
      "d",
    ]);
  }
  // Deno forks for its own uid/gid (a cwd): its own session then, no setsid.
  const inDir = commandSpec("postgres", { uid: 101, gid: 104, cwd: "/tmp", detached: true });
  assert.equal(inDir.cmd, "postgres");
  assert.equal(inDir.options.detached, true);
});

Deno.test("command(): the setsid way gives the child its own session, with the PID Deno reports", async () => {
  const child = command("sh", {
    // /proc/<pid>/stat after the command's name: state, ppid, pgrp, session.
    args: ["-c", "echo $$; s=$(cat /proc/$$/stat); set -- ${s##*) }; echo $4; echo $3; id -u"],
    detached: true,
    ...(root && pg ? { uid: pg.uid, gid: pg.gid } : {}),
    stdout: "piped",
  }).spawn();
  const out = await child.output();
  assert.ok(out.success);
  const [pid, sid, pgid, uid] = new TextDecoder().decode(out.stdout).trim().split("\n").map((
    l,
  ) => Number(l.trim()));
  assert.equal(pid, child.pid, "setsid and setpriv exec: the same process");
  assert.equal(sid, child.pid, "a session of its own");
  assert.equal(pgid, child.pid, "and its own process group");
  if (root && pg) assert.equal(uid, pg.uid);
});
