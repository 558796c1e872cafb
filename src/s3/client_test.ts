import assert from "node:assert/strict";
import { parseList, tag } from "./xml.ts";
import { S3Client, S3Error } from "./client.ts";

Deno.test("parseList() reads keys, sizes and the continuation token", () => {
  const xml = `<ListBucketResult><IsTruncated>true</IsTruncated>
    <Contents><Key>a/b&amp;c</Key><Size>3</Size><LastModified>2026-01-02T03:04:05.000Z</LastModified></Contents>
    <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>`;
  const page = parseList(xml);
  assert.deepEqual(page.objects.map((o) => [o.key, o.size]), [["a/b&c", 3]]);
  assert.equal(page.next, "tok");
  assert.equal(tag("<Error><Code>NoSuchBucket</Code></Error>", "Code"), "NoSuchBucket");
});

Deno.test("S3Client.url() builds path-style and virtual-host URLs with encoded keys", () => {
  const creds = { accessKeyId: "a", secretAccessKey: "b" };
  const base = { region: "us-east-1", bucket: "bk", credentials: creds, timeoutMs: 1000 };
  const path = new S3Client({ ...base, endpoint: "http://127.0.0.1:7480", pathStyle: true });
  assert.equal(path.url("p/wal/0001.partial").href, "http://127.0.0.1:7480/bk/p/wal/0001.partial");
  const vhost = new S3Client({
    ...base,
    endpoint: "https://s3.eu-west-1.amazonaws.com",
    pathStyle: false,
  });
  assert.equal(vhost.url("a b").href, "https://bk.s3.eu-west-1.amazonaws.com/a%20b");
});

/** A fake store on loopback answering every GET with `size` bytes, streamed 1 MiB at a time. */
function hugeStore(size: number, o: { declareLength: boolean }) {
  const served = { bytes: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    let left = size;
    const chunk = new Uint8Array(1 << 20);
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (left <= 0) return c.close();
        const n = Math.min(left, chunk.length);
        left -= n;
        served.bytes += n;
        c.enqueue(chunk.subarray(0, n));
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: o.declareLength ? { "content-length": String(size) } : {},
    });
  });
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    region: "us-east-1",
    bucket: "bk",
    pathStyle: true,
    credentials: { accessKeyId: "a", secretAccessKey: "b" },
    timeoutMs: 30_000,
  });
  return { server, client, served };
}

Deno.test("S3Client.get() of a 1 GiB answer stops at the caller's cap with one non-transient line", async () => {
  for (const declareLength of [false, true]) {
    const { server, client, served } = hugeStore(1 << 30, { declareLength });
    try {
      await assert.rejects(
        client.get("db/wal/000000010000000000000001", 30_000, { maxBytes: 17 << 20 }),
        (e: Error) =>
          e instanceof S3Error && !e.transient && e.code === "BodyTooLarge" &&
          !e.message.includes("\n") &&
          /^S3 GET s3:\/\/bk\/db\/wal\/000000010000000000000001 answered with (more than 17825792|1073741824) bytes where beyond-pg stores at most 17825792; remove or replace that object, or check that the S3 endpoint is the right store$/
            .test(e.message),
      );
      // What the store managed to send before we hung up (socket buffers included).
      assert.ok(served.bytes < 64 << 20, `the store sent ${served.bytes >> 20} MiB`);
    } finally {
      await server.shutdown();
    }
  }
});

Deno.test("S3Client.get() keeps manifests to 1 MiB by default; list() pages to 16 MiB", async () => {
  const { server, client } = hugeStore(2 << 20, { declareLength: false });
  try {
    await assert.rejects(client.get("db/beyond-pg.json"), /more than 1048576 bytes where/);
  } finally {
    await server.shutdown();
  }
  const big = hugeStore(32 << 20, { declareLength: false });
  try {
    await assert.rejects(
      big.client.list("db/"),
      /S3 LIST s3:\/\/bk\/db\/ answered with more than 16777216 bytes where/,
    );
  } finally {
    await big.server.shutdown();
  }
});
