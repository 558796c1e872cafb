import assert from "node:assert/strict";
import { CredentialsError, parseCredentialDocument, RefreshingSource } from "./credentials.ts";

Deno.test("parseCredentialDocument() reads the metadata / container / export-credentials shape", () => {
  const doc = parseCredentialDocument(
    JSON.stringify({
      AccessKeyId: "ASIA1",
      SecretAccessKey: "s",
      Token: "t",
      Expiration: "2030-01-01T00:00:00Z",
    }),
    "f",
  );
  assert.deepEqual(doc, {
    credentials: { accessKeyId: "ASIA1", secretAccessKey: "s", sessionToken: "t" },
    expires: Date.parse("2030-01-01T00:00:00Z"),
  });
  assert.deepEqual(
    parseCredentialDocument(
      '{"Version":1,"AccessKeyId":"a","SecretAccessKey":"b","SessionToken":"c"}',
      "f",
    )
      .credentials,
    { accessKeyId: "a", secretAccessKey: "b", sessionToken: "c" },
  );
  assert.throws(
    () => parseCredentialDocument("{", "the file /c.json"),
    /the file \/c.json is not JSON/,
  );
  assert.throws(
    () => parseCredentialDocument('{"AccessKeyId":"a"}', "f"),
    (e: Error) =>
      e instanceof CredentialsError && /has no AccessKeyId and SecretAccessKey/.test(e.message),
  );
});

Deno.test("RefreshingSource re-reads 5 minutes before expiry, on change, and when refused", async () => {
  let now = 0;
  let reads = 0;
  let changed = false;
  const src = new RefreshingSource(() => {
    reads++;
    return Promise.resolve({
      credentials: { accessKeyId: `k${reads}`, secretAccessKey: "s", sessionToken: "t" },
      expires: now + 3_600_000,
    });
  }, { now: () => now, changed: () => changed });
  assert.equal((await src.get()).accessKeyId, "k1");
  now += 30 * 60_000;
  assert.equal((await src.get()).accessKeyId, "k1", "still valid: no read");
  now += 26 * 60_000; // 4 minutes before expiry
  assert.equal((await src.get()).accessKeyId, "k2");
  changed = true;
  now += 11_000;
  assert.equal((await src.get()).accessKeyId, "k3", "the file changed");
  changed = false;
  src.invalidate();
  assert.equal((await src.get()).accessKeyId, "k4", "the store refused them");
  assert.equal(reads, 4);
});

Deno.test("RefreshingSource keeps valid credentials when a re-read fails, and says so once", async () => {
  let now = 0;
  let fail = false;
  const warnings: string[] = [];
  const src = new RefreshingSource(
    () =>
      fail ? Promise.reject(new Error("file gone")) : Promise.resolve({
        credentials: { accessKeyId: "k", secretAccessKey: "s" },
        expires: now + 600_000,
      }),
    { now: () => now, warn: (l) => warnings.push(l) },
  );
  await src.get();
  fail = true;
  now += 6 * 60_000; // within 5 min of expiry: a re-read is due, and fails
  assert.equal((await src.get()).accessKeyId, "k");
  await src.get();
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^file gone; using the credentials read before until they expire at /);
  now += 5 * 60_000; // expired
  await assert.rejects(src.get(), /file gone/);
});
