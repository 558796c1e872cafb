import assert from "node:assert/strict";
import { credentialSourceFor, readCredentialsFile } from "./credentials.ts";
import type { ArchiveConfig } from "./config.ts";

const cfg = (o: Partial<ArchiveConfig>): ArchiveConfig =>
  ({ accessKeyId: "", secretAccessKey: "", ...o }) as ArchiveConfig;

Deno.test("credentialSourceFor(): a credentials file is re-read once the platform rewrites it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/creds.json`;
    const write = (k: string) =>
      Deno.writeTextFileSync(
        path,
        JSON.stringify({
          AccessKeyId: k,
          SecretAccessKey: "s",
          Token: `t-${k}`,
          Expiration: new Date(Date.now() + 3_600_000).toISOString(),
        }),
      );
    write("one");
    const src = credentialSourceFor(cfg({ credentialsFile: path }));
    assert.deepEqual(await src.get(), {
      accessKeyId: "one",
      secretAccessKey: "s",
      sessionToken: "t-one",
    });
    write("two-rotated"); // a new size: a change even within the same mtime tick
    src.invalidate(); // as after the store refused; a change is otherwise seen within 10 s
    assert.equal((await src.get()).accessKeyId, "two-rotated");
    assert.equal(src.refreshable, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCredentialsFile() refuses a file others can write, or a link", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/creds.json`;
    Deno.writeTextFileSync(path, "{}");
    Deno.chmodSync(path, 0o666);
    assert.throws(
      () => readCredentialsFile(path),
      /is not safe for root to use \(owner uid \d+, mode 666\); make it root's and not writable by group or others/,
    );
    Deno.chmodSync(path, 0o600);
    Deno.symlinkSync(path, `${dir}/link.json`);
    assert.throws(() => readCredentialsFile(`${dir}/link.json`), /is not a regular file/);
    assert.throws(
      () => readCredentialsFile(`${dir}/none.json`),
      /cannot be read .*the platform must write it/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("credentialSourceFor(): a key pair with a session token is fixed", async () => {
  const src = credentialSourceFor(
    cfg({ accessKeyId: "a", secretAccessKey: "s", sessionToken: "t" }),
  );
  assert.deepEqual(await src.get(), { accessKeyId: "a", secretAccessKey: "s", sessionToken: "t" });
  assert.equal(src.refreshable, false);
});
