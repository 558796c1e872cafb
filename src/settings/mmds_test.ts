import assert from "node:assert/strict";
import { startMmdsEmulator } from "../../tests/support/mmds_emulator.ts";
import { parseMetadataDocument, readMmds } from "./mmds.ts";
import { resolveMmdsUrl } from "./load.ts";

const noSleep = () => Promise.resolve();

Deno.test("readMmds() uses a V2 token and returns the document's scalar values as strings", async () => {
  const mmds = startMmdsEmulator({
    POSTGRES_PASSWORD: "s3cret",
    BEYOND_VOLUME_EPHEMERAL: true,
    n: 3,
  });
  try {
    const doc = await readMmds(mmds.url, { deadlineMs: 5000 });
    assert.deepEqual(doc, { POSTGRES_PASSWORD: "s3cret", BEYOND_VOLUME_EPHEMERAL: "true", n: "3" });
    assert.equal(mmds.requests[0]!.method, "PUT");
    assert.ok(mmds.requests[1]!.token);
  } finally {
    await mmds.close();
  }
});

Deno.test("readMmds() falls back to V1 when there is no token endpoint", async () => {
  const mmds = startMmdsEmulator({ POSTGRES_PASSWORD: "v1" }, { mode: "v1" });
  try {
    assert.deepEqual(await readMmds(mmds.url, { deadlineMs: 5000 }), { POSTGRES_PASSWORD: "v1" });
    assert.equal(mmds.requests.at(-1)!.token, null);
  } finally {
    await mmds.close();
  }
});

Deno.test("readMmds() retries a starting metadata service with backoff", async () => {
  const mmds = startMmdsEmulator({ POSTGRES_PASSWORD: "later" }, { failFirst: 3 });
  const sleeps: number[] = [];
  try {
    const doc = await readMmds(mmds.url, {
      deadlineMs: 60_000,
      sleep: (ms) => (sleeps.push(ms), Promise.resolve()),
    });
    assert.equal(doc["POSTGRES_PASSWORD"], "later");
    assert.deepEqual(sleeps, [100, 200, 400]);
  } finally {
    await mmds.close();
  }
});

Deno.test("readMmds() gives up at the deadline with a one-line error naming the fix", async () => {
  const mmds = startMmdsEmulator({}, { failFirst: 1000 });
  try {
    await assert.rejects(
      readMmds(mmds.url, { deadlineMs: 50, sleep: noSleep }),
      (e: Error) =>
        /unreachable after \d+ attempts.*check BEYOND_MMDS_URL/.test(e.message) &&
        !e.message.includes("\n"),
    );
  } finally {
    await mmds.close();
  }
});

Deno.test("readMmds() rejects malformed metadata at once", async () => {
  const mmds = startMmdsEmulator(() => "{not json");
  try {
    await assert.rejects(
      readMmds(mmds.url, { deadlineMs: 5000 }),
      /is not valid JSON; publish a JSON object/,
    );
  } finally {
    await mmds.close();
  }
});

Deno.test("parseMetadataDocument() refuses arrays and nested values for our keys", () => {
  assert.throws(() => parseMetadataDocument("[1]", "x"), /not a JSON object/);
  assert.throws(
    () => parseMetadataDocument('{"POSTGRES_PASSWORD": {"a": 1}}', "x"),
    /POSTGRES_PASSWORD from x holds an object; give it a string value/,
  );
  assert.deepEqual(parseMetadataDocument('{"other": {"a": 1}, "k": null}', "x"), {});
});

Deno.test("resolveMmdsUrl() is off by default and on only when asked or inside our own VM", () => {
  assert.equal(resolveMmdsUrl({}, false), undefined);
  assert.equal(
    resolveMmdsUrl({ BEYOND_MMDS_URL: "http://127.0.0.1:9" }, false),
    "http://127.0.0.1:9",
  );
  assert.equal(resolveMmdsUrl({}, true), "http://169.254.169.254");
  assert.equal(resolveMmdsUrl({ BEYOND_MMDS_URL: "off" }, true), undefined);
});
