/**
 * The S3 client against radosgw: every retry path (through a fault proxy that answers 503
 * SlowDown, 500 or resets), a clock an hour off, SSE-C over HTTPS (and what radosgw refuses
 * without a KMS), batched deletes, multipart uploads left behind, and interop with the AWS SDK
 * (`@aws-sdk/client-s3` reads what we wrote, we read what it wrote, and SigV4 signatures match
 * for a corpus of requests).
 */
import assert from "node:assert/strict";
import { GetObjectCommand, PutObjectCommand, S3Client as AwsS3 } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { HttpRequest } from "@smithy/protocol-http";
import { Sha256 } from "@aws-crypto/sha256-js";
import { S3Client, type S3Config, S3Error } from "../src/s3/client.ts";
import { sign } from "../src/s3/sigv4.ts";
import { sha256Hex } from "../src/util/crypto.ts";
import { FaultProxy } from "./support/proxy.ts";
import { ACCESS_KEY, freshBucket, RGW_DIR, RGW_HTTP, RGW_HTTPS, SECRET_KEY } from "./support/s3.ts";

const MiB = 1 << 20;
const enc = new TextEncoder();

function client(bucket: string, endpoint: string, o: Partial<S3Config> = {}): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    bucket,
    pathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    caCerts: [Deno.readTextFileSync(`${RGW_DIR}/ca.crt`)],
    retry: { baseMs: 20 },
    ...o,
  });
}

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) crypto.getRandomValues(out.subarray(off, off + 65536));
  return out;
}

Deno.test("S3Client on radosgw: every call survives 503 SlowDown, 500 and resets, and counts them", async () => {
  const bucket = await freshBucket("retry");
  const proxy = new FaultProxy(RGW_HTTP);
  // A new connection per request: every injected fault meets a request.
  const s3 = client(bucket, `http://127.0.0.1:${proxy.port}`, { maxIdleConnections: 0 });
  const faults = () => [
    { status: 503, code: "SlowDown" },
    { status: 500, code: "InternalError" },
    "reset" as const,
  ];
  try {
    const body = random(6 * MiB);
    const steps: [string, () => Promise<unknown>][] = [
      ["put", () => s3.put("a/obj", body, { metadata: { "beyond-size": "1" } })],
      [
        "conditional put",
        async () => assert.equal(await s3.put("a/obj", body, { ifAbsent: true }), "exists"),
      ],
      ["head", async () => assert.equal((await s3.head("a/obj"))?.size, body.length)],
      [
        "get",
        async () =>
          assert.equal(
            await sha256Hex((await s3.get("a/obj", undefined, { maxBytes: 8 * MiB }))!.body),
            await sha256Hex(body),
          ),
      ],
      ["list", async () => assert.deepEqual((await s3.list("a/")).map((o) => o.key), ["a/obj"])],
      ["multipart", async () => {
        const id = await s3.createMultipart("a/mp");
        proxy.inject.push(...faults());
        const e1 = await s3.uploadPart("a/mp", id, 1, body);
        proxy.inject.push(...faults());
        const e2 = await s3.uploadPart("a/mp", id, 2, body.subarray(0, 1000));
        proxy.inject.push(...faults());
        await s3.completeMultipart("a/mp", id, [e1, e2]);
        assert.equal((await s3.head("a/mp"))?.size, body.length + 1000);
      }],
      ["delete", () => s3.delete("a/mp")],
      ["batched delete", async () => {
        await s3.deleteMany(["a/obj", "a/never-there"]);
        assert.deepEqual(await s3.list("a/"), []);
      }],
    ];
    for (const [name, step] of steps) {
      const before = s3.retries;
      proxy.inject.push(...faults());
      await step();
      assert.equal(proxy.inject.length, 0, `${name}: every fault met`);
      assert.ok(s3.retries - before >= 3, `${name}: ${s3.retries - before} retries`);
    }
    assert.ok(s3.stats.retries.throttle >= steps.length && s3.stats.retries.server >= steps.length);
    assert.ok(s3.stats.retries.reset >= steps.length);
    assert.equal(s3.stats.failures, 0);
    console.log(`  ${proxy.injected} faults injected, retries ${JSON.stringify(s3.stats.retries)}`);

    // Past the attempts: the error of the last one, one line.
    proxy.inject.push(...Array.from({ length: 3 }, () => ({ status: 503, code: "SlowDown" })));
    const few = client(bucket, `http://127.0.0.1:${proxy.port}`, {
      maxIdleConnections: 0,
      retry: { attempts: 3, baseMs: 10 },
    });
    await assert.rejects(
      few.head("x"),
      (e: Error) => e instanceof S3Error && e.code === "SlowDown" && !e.message.includes("\n"),
    );
    few.close();
  } finally {
    s3.close();
    proxy.close();
  }
});

Deno.test("S3Client on radosgw: a clock an hour off still stores and reads (signed with the store's time, said once)", async () => {
  const bucket = await freshBucket("skew");
  const warnings: string[] = [];
  const s3 = client(bucket, `http://127.0.0.1:${RGW_HTTP}`, {
    now: () => Date.now() - 3_600_000,
    warn: (l) => warnings.push(l),
  });
  const honest = client(bucket, `http://127.0.0.1:${RGW_HTTP}`, { retry: { attempts: 1 } });
  try {
    assert.deepEqual(await s3.put("k", enc.encode("x"), { ifAbsent: true }), {
      etag: "9dd4e461268c8034f5c8564e155c67a6",
    });
    assert.equal((await s3.get("k"))?.body.length, 1);
    assert.equal(s3.stats.retries.skew, 1, "one refusal, then signed right");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /clock is 3[56]\d\d s behind the S3 endpoint/);
    // What an uncorrected client gets: a line about the clock, not about the key.
    const wrong = client(bucket, `http://127.0.0.1:${RGW_HTTP}`, {
      now: () => Date.now() - 3_600_000,
      retry: { attempts: 1 },
    });
    await assert.rejects(
      wrong.head("k"),
      /clock is 3[56]\d\d s behind the S3 endpoint .*'s \(RequestTimeTooSkewed\); fix the clock/,
    );
    wrong.close();
    assert.equal((await honest.head("k"))?.size, 1);
  } finally {
    s3.close();
    honest.close();
  }
});

Deno.test("S3Client on radosgw: SSE-C and SSE-S3 round trips over HTTPS; SSE-KMS refused without a KMS (one line)", async () => {
  const bucket = await freshBucket("ssec");
  const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
  const https = `https://127.0.0.1:${RGW_HTTPS}`;
  const s3 = client(bucket, https, { sse: { kind: "c", key } });
  const plain = client(bucket, https, { retry: { attempts: 1 } });
  const other = client(bucket, https, {
    sse: { kind: "c", key: btoa(String.fromCharCode(...new Uint8Array(32))) },
    retry: { attempts: 1 },
  });
  try {
    const small = random(1000);
    const big = random(6 * MiB);
    await s3.put("small", small);
    const id = await s3.createMultipart("big");
    const e1 = await s3.uploadPart("big", id, 1, big.subarray(0, 5 * MiB));
    const e2 = await s3.uploadPart("big", id, 2, big.subarray(5 * MiB));
    await s3.completeMultipart("big", id, [e1, e2]);
    assert.equal(await sha256Hex((await s3.get("small"))!.body), await sha256Hex(small));
    assert.equal(
      await sha256Hex((await s3.get("big", undefined, { maxBytes: 8 * MiB }))!.body),
      await sha256Hex(big),
    );
    assert.equal((await s3.head("big"))?.size, big.length);
    const ranged = await new Response(
      await s3.getStream("big", undefined, { range: { start: 5 * MiB } }),
    ).arrayBuffer();
    assert.equal(await sha256Hex(new Uint8Array(ranged)), await sha256Hex(big.subarray(5 * MiB)));
    // Without the key, or with another, the store will not hand it over.
    await assert.rejects(
      plain.get("small"),
      (e: Error) => e instanceof S3Error && e.status === 400,
    );
    // (radosgw compares the key's MD5 with the one the object was stored with: 400.)
    await assert.rejects(
      other.get("small"),
      (e: Error) => e instanceof S3Error && e.status >= 400 && e.status < 500,
    );
    // SSE-S3 (the store's own keys) works over HTTPS; SSE-KMS needs a KMS radosgw has not got.
    const s3s = client(bucket, https, { sse: { kind: "aes256" }, retry: { attempts: 1 } });
    await s3s.put("sse-s3", small);
    assert.equal(await sha256Hex((await plain.get("sse-s3"))!.body), await sha256Hex(small));
    s3s.close();
    const kms = client(bucket, https, {
      sse: { kind: "kms", keyId: "pg" },
      retry: { attempts: 1 },
    });
    const r = await kms.put("x", small).then(() => "stored", (e: Error) => e.message);
    console.log(`  radosgw with SSE-KMS (no KMS configured): ${r}`);
    assert.match(
      r,
      /^S3 PUT s3:\/\/.* answered 400 InvalidArgument: Failed to retrieve the actual key/,
    );
    kms.close();
  } finally {
    for (const c of [s3, plain, other]) c.close();
  }
});

Deno.test("S3Client on radosgw: multipart uploads left behind are listed and aborted", async () => {
  const bucket = await freshBucket("mpu");
  const s3 = client(bucket, `http://127.0.0.1:${RGW_HTTP}`);
  try {
    const a = await s3.createMultipart("db/basebackups/x/base.tar.zst");
    await s3.uploadPart("db/basebackups/x/base.tar.zst", a, 1, random(1000));
    await s3.createMultipart("other/y");
    const listed = await s3.listMultipartUploads("db/");
    assert.deepEqual(listed.map((u) => [u.key, u.uploadId]), [[
      "db/basebackups/x/base.tar.zst",
      a,
    ]]);
    assert.ok(Math.abs(listed[0]!.initiated.getTime() - Date.now()) < 120_000);
    await s3.abortMultipart(listed[0]!.key, listed[0]!.uploadId);
    await s3.abortMultipart(listed[0]!.key, listed[0]!.uploadId); // already gone: fine
    assert.deepEqual(await s3.listMultipartUploads("db/"), []);
  } finally {
    s3.close();
  }
});

Deno.test("interop: the AWS SDK reads what we wrote, we read what it wrote (metadata, multipart, SSE-C)", async () => {
  const bucket = await freshBucket("sdk");
  const https = `https://127.0.0.1:${RGW_HTTPS}`;
  const rawKey = crypto.getRandomValues(new Uint8Array(32));
  const key = btoa(String.fromCharCode(...rawKey));
  const ours = client(bucket, `http://127.0.0.1:${RGW_HTTP}`);
  const oursC = client(bucket, https, { sse: { kind: "c", key } });
  const sdk = new AwsS3({
    endpoint: `http://127.0.0.1:${RGW_HTTP}`,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  });
  const { Agent } = await import("node:https");
  const { NodeHttpHandler } = await import("@smithy/node-http-handler");
  const sdkC = new AwsS3({
    endpoint: https,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestHandler: new NodeHttpHandler({
      httpsAgent: new Agent({ ca: Deno.readTextFileSync(`${RGW_DIR}/ca.crt`) }),
    }),
  });
  const bytes = async (b: { transformToByteArray(): Promise<Uint8Array> } | undefined) =>
    await b!.transformToByteArray();
  try {
    const body = random(6 * MiB);
    await ours.put("ours/one key+with spaces", body, {
      metadata: { "beyond-codec": "zstd", "beyond-size": "16777216" },
    });
    const got = await sdk.send(
      new GetObjectCommand({ Bucket: bucket, Key: "ours/one key+with spaces" }),
    );
    assert.equal(await sha256Hex(await bytes(got.Body)), await sha256Hex(body));
    assert.deepEqual(got.Metadata, { "beyond-codec": "zstd", "beyond-size": "16777216" });
    const id = await ours.createMultipart("ours/mp", { "beyond-label": "L" });
    const e1 = await ours.uploadPart("ours/mp", id, 1, body.subarray(0, 5 * MiB));
    const e2 = await ours.uploadPart("ours/mp", id, 2, body.subarray(5 * MiB));
    await ours.completeMultipart("ours/mp", id, [e1, e2]);
    const mp = await sdk.send(new GetObjectCommand({ Bucket: bucket, Key: "ours/mp" }));
    assert.equal(await sha256Hex(await bytes(mp.Body)), await sha256Hex(body));
    assert.equal(mp.Metadata?.["beyond-label"], "L");

    await sdk.send(
      new PutObjectCommand({ Bucket: bucket, Key: "sdk/ü/x", Body: body, Metadata: { a: "b" } }),
    );
    assert.equal(
      await sha256Hex((await ours.get("sdk/ü/x", undefined, { maxBytes: 8 * MiB }))!.body),
      await sha256Hex(body),
    );
    assert.deepEqual((await ours.head("sdk/ü/x"))?.metadata, { a: "b" });
    assert.deepEqual((await ours.list("sdk/")).map((o) => o.key), ["sdk/ü/x"]);

    // SSE-C: the same key, either side.
    await oursC.put("c/ours", body.subarray(0, 1000));
    const c1 = await sdkC.send(
      new GetObjectCommand({
        Bucket: bucket,
        Key: "c/ours",
        SSECustomerAlgorithm: "AES256",
        SSECustomerKey: rawKey as unknown as string,
      }),
    );
    assert.equal(await sha256Hex(await bytes(c1.Body)), await sha256Hex(body.subarray(0, 1000)));
    await sdkC.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: "c/sdk",
        Body: body.subarray(0, 1000),
        SSECustomerAlgorithm: "AES256",
        SSECustomerKey: rawKey as unknown as string,
      }),
    );
    assert.equal(
      await sha256Hex((await oursC.get("c/sdk"))!.body),
      await sha256Hex(body.subarray(0, 1000)),
    );
  } finally {
    ours.close();
    oursC.close();
    sdk.destroy();
    sdkC.destroy();
  }
});

Deno.test("interop: SigV4 signatures match the AWS SDK's for a corpus of requests (session token included)", async () => {
  const now = new Date("2026-11-23T15:30:00Z");
  const cases: {
    method: string;
    url: string;
    headers?: Record<string, string>;
    body?: string;
    token?: string;
  }[] = [
    { method: "GET", url: "http://127.0.0.1:7480/bk/db/wal/000000010000000000000001" },
    {
      method: "GET",
      url: "http://127.0.0.1:7480/bk?list-type=2&prefix=db%2Fwal%2F&continuation-token=a%2Bb%3D",
    },
    {
      method: "PUT",
      url: "https://s3.eu-west-1.amazonaws.com/bk/a%20b/%C3%BC%2Bc",
      body: "hello",
      headers: {
        "x-amz-meta-beyond-codec": "zstd",
        "if-none-match": "*",
        "content-type": "application/octet-stream",
      },
    },
    {
      method: "POST",
      url: "https://bk.s3.amazonaws.com/db/base.tar.zst?uploads=",
      headers: {
        "x-amz-server-side-encryption": "aws:kms",
        "x-amz-server-side-encryption-aws-kms-key-id": "alias/pg",
      },
    },
    {
      method: "PUT",
      url: "https://bk.s3.amazonaws.com/db/base.tar.zst?partNumber=3&uploadId=2~abc_def",
      body: "part",
      token: "FQoGZXIvYXdzEJr//////////wEaDO",
    },
    { method: "DELETE", url: "http://127.0.0.1:7480/bk/db/x?uploadId=u-1", token: "tok" },
    {
      method: "HEAD",
      url: "http://127.0.0.1:7480/bk/db/beyond-pg.json",
      headers: { "range": "bytes=0-99" },
    },
    {
      method: "POST",
      url: "http://127.0.0.1:7480/bk?delete=",
      body: "<Delete/>",
      headers: { "content-md5": "x" },
    },
  ];
  for (const c of cases) {
    const url = new URL(c.url);
    const body = enc.encode(c.body ?? "");
    const payloadHash = await sha256Hex(body);
    const headers: Record<string, string> = { ...c.headers, "x-amz-content-sha256": payloadHash };
    if (c.body !== undefined || c.method === "PUT" || c.method === "POST") {
      headers["content-length"] = String(body.length);
    }
    const creds = {
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
      ...(c.token ? { sessionToken: c.token } : {}),
    };
    const ours = await sign({ method: c.method, url, headers, payloadHash }, creds, "eu-west-1", {
      now,
    });
    const query: Record<string, string> = {};
    url.searchParams.forEach((v, k) => (query[k] = v));
    const signer = new SignatureV4({
      credentials: creds,
      region: "eu-west-1",
      service: "s3",
      sha256: Sha256,
      uriEscapePath: false,
      applyChecksum: false,
    });
    const theirs = await signer.sign(
      new HttpRequest({
        method: c.method,
        protocol: url.protocol,
        hostname: url.hostname,
        ...(url.port ? { port: Number(url.port) } : {}),
        path: url.pathname,
        query,
        headers: { host: url.host, ...headers },
        body,
      }),
      { signingDate: now },
    );
    assert.equal(ours["authorization"], theirs.headers["authorization"], `${c.method} ${c.url}`);
    if (c.token) assert.equal(ours["x-amz-security-token"], theirs.headers["x-amz-security-token"]);
  }
});
