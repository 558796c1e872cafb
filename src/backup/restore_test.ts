import assert from "node:assert/strict";
import { strayMember } from "./restore.ts";

Deno.test("strayMember: only regular files and directories pass; links of either kind and FIFOs are named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpg-stray-" });
  try {
    await Deno.mkdir(`${dir}/base/1`, { recursive: true });
    await Deno.writeTextFile(`${dir}/base/1/1259`, "x");
    await Deno.writeTextFile(`${dir}/PG_VERSION`, "15\n");
    assert.equal(await strayMember(dir, undefined), undefined);

    await Deno.link(`${dir}/PG_VERSION`, `${dir}/base/copy`);
    assert.match(
      String(await strayMember(dir, undefined)),
      /^"(PG_VERSION|base\/copy)" is a hard link$/,
    );
    await Deno.remove(`${dir}/base/copy`);

    await Deno.symlink("/etc", `${dir}/conf.d`);
    assert.equal(await strayMember(dir, undefined), `"conf.d" is a symbolic link`);
    await Deno.remove(`${dir}/conf.d`);

    const mk = await new Deno.Command("mkfifo", { args: [`${dir}/base/1/fifo`] }).output();
    assert.ok(mk.success);
    assert.equal(await strayMember(dir, undefined), `"base/1/fifo" is a FIFO`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
