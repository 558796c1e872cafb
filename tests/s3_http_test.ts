/**
 * The S3 client's own HTTP/1.1 transport against radosgw (HTTP 7480, HTTPS 7443), through a
 * fault proxy on loopback: round trips, keep-alive reuse, a slow store that must not be cut off,
 * a hung store that must be reported within the idle timeout, a reset mid-upload.
 */
import assert from "node:assert/strict";
import { S3Client, S3Error } from "../src/s3/client.ts";
import { archivePrepared } from "../src/wal/archive.ts";
import { ArchiveError } from "../src/wal/errors.ts";
import type { ArchiveConfig } from "../src/wal/config.ts";
import { sha256Hex } from "../src/util/crypto.ts";
import { FaultProxy } from "./support/proxy.ts";
import { ACCESS_KEY, freshBucket, RGW_DIR, RGW_HTTP, RGW_HTTPS, SECRET_KEY } from "./support/s3.ts";

const MiB = 1 << 20;

function client(
  bucket: string,
  endpoint: string,
  o: { idleMs?: number; caCerts?: string[] } = {},
): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    bucket,
    pathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    ...o,
  });
}

function caCerts(): string[] {
  return [Deno.readTextFileSync(`${RGW_DIR}/ca.crt`)];
}

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536));
  return out;
}

async function timed<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const t0 = performance.now();
  try {
    return { value: await p, ms: performance.now() - t0 };
  } catch (error) {
    return { error, ms: performance.now() - t0 };
  }
}

for (const scheme of ["http", "https"] as const) {
  Deno.test(`S3Client over ${scheme}: put, head, get, list, delete and multipart round trip on one kept-alive connection`, async () => {
    const bucket = await freshBucket("http");
    const proxy = new FaultProxy(scheme === "http" ? RGW_HTTP : RGW_HTTPS);
    const s3 = client(bucket, `${scheme}://127.0.0.1:${proxy.port}`, {
      ...(scheme === "https" ? { caCerts: caCerts() } : {}),
    });
    try {
      const small = random(1000);
      const big = random(5 * MiB + 123);
      assert.notEqual(await s3.put("a/small obj", small, { metadata: { k: "v" } }), "exists");
      assert.equal(await s3.put("a/small obj", small, { ifAbsent: true }), "exists");
      const head = await s3.head("a/small obj");
      assert.equal(head?.size, 1000);
      assert.deepEqual(head?.metadata, { k: "v" });
      assert.equal(await s3.head("a/none"), undefined);
      assert.deepEqual((await s3.get("a/small obj"))?.body, small);
      assert.equal(await s3.get("a/none"), undefined);
      await s3.put("a/big", big, { payloadHash: await sha256Hex(big) });
      assert.deepEqual((await s3.get("a/big", undefined, { maxBytes: 6 * MiB }))?.body, big);

      const id = await s3.createMultipart("a/mp", { label: "x" });
      const etags = [
        await s3.uploadPart("a/mp", id, 1, big.subarray(0, 5 * MiB)),
        await s3.uploadPart(
          "a/mp",
          id,
          2,
          big.subarray(5 * MiB),
          await sha256Hex(big.subarray(5 * MiB)),
        ),
      ];
      await s3.completeMultipart("a/mp", id, etags);
      const stream = await s3.getStream("a/mp");
      assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), big);
      const aborted = await s3.createMultipart("a/aborted");
      await s3.abortMultipart("a/aborted", aborted);

      assert.deepEqual((await s3.list("a/")).map((o) => [o.key, o.size]), [
        ["a/big", big.length],
        ["a/mp", big.length],
        ["a/small obj", 1000],
      ]);
      for (const key of ["a/small obj", "a/big", "a/mp"]) await s3.delete(key);
      assert.deepEqual(await s3.list("a/"), []);
      console.log(`  ${scheme}: 20 requests over ${proxy.accepted} TCP connection(s)`);
      assert.equal(proxy.accepted, 1, "every request on the one kept-alive connection");
    } finally {
      s3.close();
      proxy.close();
    }
  });
}

Deno.test("S3Client over https checks the store's certificate and name: no CA → one transient TLS line", async () => {
  const bucket = await freshBucket("http");
  const trusting = client(bucket, `https://localhost:${RGW_HTTPS}`, { caCerts: caCerts() });
  const untrusting = client(bucket, `https://127.0.0.1:${RGW_HTTPS}`);
  try {
    assert.equal(await trusting.head("nothing"), undefined); // the certificate names localhost
    await assert.rejects(
      untrusting.head("nothing"),
      (e: Error) =>
        e instanceof S3Error && e.transient && e.code === "TlsFailed" &&
        !e.message.includes("\n") &&
        e.message.startsWith(
          `cannot reach the S3 endpoint https://127.0.0.1:${RGW_HTTPS} (HEAD s3://${bucket}/nothing: TLS handshake with 127.0.0.1:${RGW_HTTPS} failed: `,
        ),
    );
  } finally {
    trusting.close();
    untrusting.close();
  }
});

Deno.test("S3Client keeps one connection across 20 requests, and resends a GET once when the store dropped it", async () => {
  const bucket = await freshBucket("http");
  const proxy = new FaultProxy(RGW_HTTP);
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`);
  try {
    await s3.put("k", random(100));
    for (let i = 0; i < 19; i++) await (i % 2 ? s3.head("k") : s3.get("k"));
    assert.equal(proxy.accepted, 1);
    proxy.cut(); // the idle connection is gone, as when a store closes idle ones
    assert.equal((await s3.get("k"))?.body.length, 100);
    assert.equal(proxy.accepted, 2, "resent on a second connection");
  } finally {
    s3.close();
    proxy.close();
  }
});

Deno.test("S3Client through a store throttled to 60 kB/s per connection both ways still stores and fetches 5 MB", async () => {
  const bucket = await freshBucket("http");
  const direct = client(bucket, `http://127.0.0.1:${RGW_HTTP}`);
  const proxy = new FaultProxy(RGW_HTTP);
  // A short idle timeout: slow is fine as long as bytes move.
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`, { idleMs: 5000 });
  try {
    const up = random(5_000_000);
    const down = random(5_000_000);
    await direct.put("down", down);
    proxy.throttle = 60_000;
    proxy.throttleDown = 60_000;
    // Two connections at once, each throttled on its own: ~85 s instead of ~170.
    const [put, get] = await Promise.all([
      timed(s3.put("up", up, { payloadHash: await sha256Hex(up) })),
      timed(s3.get("down", undefined, { maxBytes: 6 * MiB })),
    ]);
    assert.ifError(put.error);
    assert.ifError(get.error);
    assert.deepEqual(get.value?.body, down);
    proxy.throttle = proxy.throttleDown = 0;
    assert.equal((await direct.head("up"))?.size, up.length);
    const rate = (ms: number) =>
      `${(5_000_000 / ms).toFixed(1)} kB/s in ${(ms / 1000).toFixed(1)} s`;
    console.log(`  5 MB PUT at ${rate(put.ms)}, GET at ${rate(get.ms)} (idle timeout 5 s)`);
    assert.ok(
      put.ms > 60_000,
      "the throttle held (slower than the old 60 s limit on the whole request)",
    );
  } finally {
    s3.close();
    direct.close();
    proxy.close();
  }
});

Deno.test("S3Client: a hung store fails within the idle timeout, before an answer and mid-upload", async () => {
  const bucket = await freshBucket("http");
  const proxy = new FaultProxy(RGW_HTTP);
  const idleMs = 2000;
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`, { idleMs });
  try {
    await s3.put("k", random(100)); // a kept-alive connection, then the store stops
    proxy.stall = true;
    const head = await timed(s3.head("k"));
    assert.ok(head.error instanceof S3Error && head.error.transient, String(head.error));
    assert.equal(head.error.code, "IdleTimeout");
    assert.equal(
      head.error.message,
      `the S3 endpoint http://127.0.0.1:${proxy.port} stalled (HEAD s3://${bucket}/k: no answer for 2 s after sending the request); check that the store is up and not overloaded, and the network`,
    );
    console.log(
      `  HEAD to a hung store failed after ${head.ms.toFixed(0)} ms (idle timeout ${idleMs} ms)`,
    );
    assert.ok(head.ms >= idleMs - 50 && head.ms < idleMs + 1500, `after ${head.ms} ms`);

    proxy.stall = false;
    proxy.throttle = 4 * MiB; // slow enough to be caught mid-way
    const body = random(64 * MiB);
    const hash = await sha256Hex(body);
    let stalledAt = 0;
    setTimeout(() => {
      proxy.stall = true;
      stalledAt = performance.now();
    }, 1000);
    const put = await timed(s3.put("big", body, { payloadHash: hash }));
    const sinceStall = performance.now() - stalledAt;
    assert.ok(put.error instanceof S3Error && put.error.transient, String(put.error));
    assert.match(
      put.error.message,
      /\(PUT s3:\/\/[^ ]+\/big: no progress for 2 s after [\d.]+ MiB of 64\.0 MiB sent\)/,
    );
    console.log(
      `  PUT to a store hung mid-upload failed ${sinceStall.toFixed(0)} ms after it hung: ${
        put.error.message.match(/no progress[^)]*/)![0]
      }`,
    );
    // Socket buffers take a few MiB more after the store stops reading: a little slack.
    assert.ok(sinceStall < idleMs + 3000, `${sinceStall} ms after the store hung`);
  } finally {
    proxy.stall = false;
    s3.close();
    proxy.close();
  }
});

Deno.test("archivePrepared() against a hung store fails as a transient ArchiveError that names the stall", async () => {
  const bucket = await freshBucket("http");
  const proxy = new FaultProxy(RGW_HTTP);
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`, { idleMs: 2000 });
  const cfg = {
    target: `s3://${bucket}/db`,
    major: 16,
    sysid: "7000000000000000001",
  } as ArchiveConfig;
  const body = random(5 * MiB);
  const prepared = {
    name: "000000010000000000000001",
    path: "/nonexistent",
    size: 16 * MiB,
    codec: "zstd" as const,
    body,
    bodySha256: await sha256Hex(body),
  };
  try {
    proxy.stall = true;
    const r = await timed(
      archivePrepared(s3, cfg, prepared, () => Promise.resolve(body), { conditionalPut: true }),
    );
    assert.ok(r.error instanceof ArchiveError && r.error.transient, String(r.error));
    assert.match(r.error.message, /stalled \(PUT .*: no (answer|progress) for 2 s/);
    console.log(
      `  archiving to a hung store failed after ${r.ms.toFixed(0)} ms: ${r.error.message}`,
    );
    assert.ok(r.ms < 2000 + 3000, `after ${r.ms} ms`);
  } finally {
    proxy.stall = false;
    s3.close();
    proxy.close();
  }
});

Deno.test("S3Client: a connection reset mid-upload is a transient S3Error saying how far it got", async () => {
  const bucket = await freshBucket("http");
  const proxy = new FaultProxy(RGW_HTTP);
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`);
  try {
    const body = random(32 * MiB);
    const payloadHash = await sha256Hex(body);
    proxy.throttle = 4 * MiB;
    proxy.sent = 0;
    // Cut once the upload is under way (a timer alone can fire before it starts on a busy box).
    const cutter = (async () => {
      while (proxy.sent < 2 * MiB) await new Promise((r) => setTimeout(r, 10));
      proxy.cut();
    })();
    const r = await timed(s3.put("reset", body, { payloadHash }));
    await cutter;
    assert.ok(r.error instanceof S3Error && r.error.transient, String(r.error));
    assert.equal(r.error.code, "ConnectionClosed");
    assert.match(
      r.error.message,
      new RegExp(
        `^cannot reach the S3 endpoint http://127\\.0\\.0\\.1:${proxy.port} \\(PUT s3://${bucket}/reset: the connection was closed after [\\d.]+ MiB of 32\\.0 MiB sent \\(.+\\)\\); check the S3 endpoint and the network$`,
      ),
    );
    console.log(`  reset mid-upload: ${r.error.message.match(/the connection[^;]*/)![0]}`);
    proxy.throttle = 0;
    assert.equal(await s3.head("reset"), undefined, "no partial object");
  } finally {
    s3.close();
    proxy.close();
  }
});
