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
