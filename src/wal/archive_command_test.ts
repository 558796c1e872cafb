/**
 * archive_command as postgres's shell runs it: a stored file costs a `test`; a file being
 * uploaded is waited for (no process of ours); anything else, or an upload that ends without a
 * marker, falls back to `beyond-pg archive`. A fake `beyond-pg` records that it ran.
 */
import assert from "node:assert/strict";
import { archiveCommandFor, archiveDoneDir } from "./config.ts";

const NAME = "000000010000000000000007";

async function withCommand(
  fn: (
    o: { done: string; run: () => Promise<{ code: number; fellBack: boolean }> },
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "bpg-archive-cmd-" });
  const self = `${dir}/fake-beyond-pg`;
  await Deno.writeTextFile(self, `#!/bin/sh\necho "$@" >> ${dir}/fell-back\nexit 3\n`);
  await Deno.chmod(self, 0o755);
  const before = Deno.env.get("BEYOND_PG_SELF");
  Deno.env.set("BEYOND_PG_SELF", self);
  try {
    const runDir = `${dir}/run`;
    const done = archiveDoneDir(runDir);
    await Deno.mkdir(done, { recursive: true });
    await Deno.writeTextFile(`${runDir}/archive/state.json`, "{}");
    const script = archiveCommandFor(runDir).replaceAll("%p", `pg_wal/${NAME}`).replaceAll(
      "%f",
      NAME,
    );
    const run = async () => {
      await Deno.remove(`${dir}/fell-back`).catch(() => {});
      const o = await new Deno.Command("sh", { args: ["-c", script] }).output();
      const fellBack = await Deno.stat(`${dir}/fell-back`).then(() => true, () => false);
      return { code: o.code, fellBack };
    };
    await fn({ done, run });
  } finally {
    if (before === undefined) Deno.env.delete("BEYOND_PG_SELF");
    else Deno.env.set("BEYOND_PG_SELF", before);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("archive_command: a stored file is a `test`; an unknown one asks beyond-pg", async () => {
  await withCommand(async ({ done, run }) => {
    assert.deepEqual(await run(), { code: 3, fellBack: true });
    await Deno.writeTextFile(`${done}/${NAME}`, "");
    assert.deepEqual(await run(), { code: 0, fellBack: false });
  });
});

Deno.test("archive_command: an upload in flight is waited for, without a process of ours", async () => {
  await withCommand(async ({ done, run }) => {
    await Deno.writeTextFile(`${done}/${NAME}.up`, "");
    const finish = setTimeout(() => {
      Deno.writeTextFileSync(`${done}/${NAME}`, "");
      Deno.removeSync(`${done}/${NAME}.up`);
    }, 300);
    try {
      assert.deepEqual(await run(), { code: 0, fellBack: false });
    } finally {
      clearTimeout(finish);
    }
  });
});

Deno.test("archive_command: an upload that ends without a marker asks beyond-pg why", async () => {
  await withCommand(async ({ done, run }) => {
    await Deno.writeTextFile(`${done}/${NAME}.up`, "");
    const fail = setTimeout(() => Deno.removeSync(`${done}/${NAME}.up`), 300);
    try {
      assert.deepEqual(await run(), { code: 3, fellBack: true });
    } finally {
      clearTimeout(fail);
    }
  });
});

Deno.test("archive_command: no archive state (no target) is exit 0 without a process of ours", async () => {
  await withCommand(async ({ done, run }) => {
    await Deno.remove(`${done}/../state.json`);
    assert.deepEqual(await run(), { code: 0, fellBack: false });
  });
});
