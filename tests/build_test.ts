/**
 * The built artifact (compiled binary where a denort runtime exists, else bundle + runtime +
 * launcher) behaves as `deno run main.ts` does: version, and a boot on a temp directory.
 */
import assert from "node:assert/strict";
import { cleanup, instanceEnv, removeRoot, tempRoot } from "./support/harness.ts";
import { repoRoot } from "./support/paths.ts";

const decoder = new TextDecoder();

Deno.test("deno task build → dist/beyond-pg runs `version` and `boot`", async () => {
  const out = await tempRoot("bpg-build-");
  try {
    const build = await new Deno.Command(Deno.execPath(), {
      args: ["task", "--quiet", "build", "--out", `${out}/dist`],
      cwd: repoRoot,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(build.success, decoder.decode(build.stderr));
    const kind = Deno.readTextFileSync(`${out}/dist/BUILD`).trim();
    assert.ok(kind === "compiled" || kind === "bundle", kind);
    const bin = `${out}/dist/beyond-pg`;

    const version = await new Deno.Command(bin, { args: ["version"], stdout: "piped" }).output();
    assert.ok(version.success);
    assert.match(
      decoder.decode(version.stdout),
      /^beyond-pg \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+\)$/m,
    );

    // The image build's step: every command's code loads (the bundle is split per command).
    const warm = await new Deno.Command(bin, { args: ["warm"], stderr: "piped" }).output();
    assert.ok(warm.success, decoder.decode(warm.stderr));
    if (kind === "bundle") {
      assert.ok(Deno.statSync(`${out}/dist/js/main.js`).isFile);
      assert.ok([...Deno.readDirSync(`${out}/dist/js`)].length > 10, "a split bundle");
    }

    const env = instanceEnv(`${out}/db`, {
      port: 1,
      directPort: 2,
      httpPort: 3,
      password: "build-test",
    });
    Deno.mkdirSync(`${out}/db`, { mode: 0o755 });
    const runBoot = () =>
      new Deno.Command(bin, {
        args: ["boot"],
        env,
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
    const boot = await runBoot();
    const text = decoder.decode(boot.stderr);
    assert.ok(boot.success, text);
    assert.match(text, /boot done: initialized cluster in .*\/db\/data\/main/);
    assert.ok(Deno.statSync(`${out}/db/data/main/PG_VERSION`).isFile);
    assert.ok(Deno.statSync(`${out}/db/data/main/conf.d/00-beyond.conf`).isFile);
    // Idempotent: a second boot writes nothing.
    const again = await runBoot();
    assert.ok(again.success);
    assert.match(
      decoder.decode(again.stderr),
      /boot done: existing cluster .* 0 file\(s\) written/,
    );
  } finally {
    await cleanup();
    await removeRoot(out);
  }
});
