/**
 * The client's retries, clock-skew correction and credential refresh, against a scripted store
 * on loopback: each request gets the next scripted answer (a status, a reset, or silence).
 */
import assert from "node:assert/strict";
import { S3Client, S3Error } from "./client.ts";
import { RefreshingSource } from "./credentials.ts";

type Action =
  | { status: number; body?: string; headers?: Record<string, string> }
  | "reset"
  | "hang";

interface Seen {
  method: string;
  target: string;
  headers: Record<string, string>;
  body: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A store answering request n with `script(n, request)`. */
function scripted(script: (n: number, req: Seen) => Action) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const seen: Seen[] = [];
  const serve = async (conn: Deno.Conn) => {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    for (;;) {
      let end = -1;
      while ((end = dec.decode(buf).indexOf("\r\n\r\n")) === -1) {
        const n = await conn.read(chunk);
        if (n === null) return;
        buf = new Uint8Array([...buf, ...chunk.subarray(0, n)]);
      }
      const head = dec.decode(buf).slice(0, end);
      const [line, ...rest] = head.split("\r\n");
      const headers: Record<string, string> = {};
      for (const h of rest) {
        const i = h.indexOf(":");
        headers[h.slice(0, i).toLowerCase()] = h.slice(i + 1).trim();
      }
      const length = Number(headers["content-length"] ?? 0);
      let body = buf.subarray(enc.encode(head).length + 4);
      while (body.length < length) {
        const n = await conn.read(chunk);
        if (n === null) return;
        body = new Uint8Array([...body, ...chunk.subarray(0, n)]);
      }
      buf = body.subarray(length);
      const [method, target] = line!.split(" ");
      const req = {
        method: method!,
        target: target!,
        headers,
        body: dec.decode(body.subarray(0, length)),
      };
      seen.push(req);
      const action = script(seen.length, req);
      if (action === "reset") return;
      if (action === "hang") {
        await new Promise((r) => setTimeout(r, 60_000));
        return;
      }
      const text = action.body ?? "";
      const out = [
        `HTTP/1.1 ${action.status} X`,
        `content-length: ${enc.encode(text).length}`,
        ...Object.entries({ date: new Date().toUTCString(), ...action.headers }).map(([k, v]) =>
          `${k}: ${v}`
        ),
        "",
        text,
      ].join("\r\n");
      await conn.write(enc.encode(out));
    }
  };
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serve(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    endpoint: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    seen,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await done;
    },
  };
}

function client(endpoint: string, o: Partial<ConstructorParameters<typeof S3Client>[0]> = {}) {
  const waits: number[] = [];
  const c = new S3Client({
    endpoint,
    region: "us-east-1",
    bucket: "bk",
    pathStyle: true,
    credentials: { accessKeyId: "a", secretAccessKey: "b" },
    idleMs: 500,
    random: () => 0.5,
    sleep: (ms) => (waits.push(ms), Promise.resolve()),
    warn: () => {},
    ...o,
  });
  return { c, waits };
}

const error = (code: string) => `<Error><Code>${code}</Code></Error>`;

Deno.test("S3Client retries 5xx and SlowDown with jittered backoff, and counts them", async () => {
  const store = scripted((n) =>
    n <= 2
      ? { status: 503, body: error("SlowDown") }
      : n === 3
      ? { status: 500, body: error("InternalError") }
      : { status: 200, headers: { etag: '"e"' } }
  );
  const { c, waits } = client(store.endpoint);
  try {
    assert.deepEqual(await c.put("k", enc.encode("x")), { etag: "e" });
    assert.equal(store.seen.length, 4);
    assert.deepEqual(waits, [100, 200, 400], "half of 200, 400, 800 ms (random() = 0.5)");
    assert.equal(c.stats.retries.throttle, 2);
    assert.equal(c.stats.retries.server, 1);
    assert.equal(c.stats.failures, 0);
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client retries resets and silent stores (idle timeout) on every call", async () => {
  const store = scripted((n, req) =>
    n === 1 ? "reset" : n === 2 ? "hang" : req.target.includes("list-type")
      ? {
        status: 200,
        body:
          "<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a</Key><Size>1</Size></Contents></ListBucketResult>",
      }
      : { status: 204 }
  );
  const { c } = client(store.endpoint);
  try {
    assert.deepEqual((await c.list("")).map((o) => o.key), ["a"]);
    assert.equal(c.stats.retries.reset, 1);
    assert.equal(c.stats.retries.timeout, 1);
    await c.delete("gone");
    assert.equal(store.seen.length, 4);
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client gives up after its attempts, and never retries a refusal", async () => {
  const store = scripted((_, req) =>
    req.target.includes("denied")
      ? { status: 403, body: error("AccessDenied") }
      : { status: 500, body: error("InternalError") }
  );
  const { c } = client(store.endpoint, { retry: { attempts: 3 } });
  try {
    await assert.rejects(c.head("k"), (e: Error) => e instanceof S3Error && e.status === 500);
    assert.equal(store.seen.length, 3);
    await assert.rejects(c.get("denied"), /S3 refused the credentials .*\(AccessDenied\)/);
    assert.equal(store.seen.length, 4);
    assert.equal(c.stats.failures, 1, "a refusal is not a give-up");
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client signs with the store's time when this clock is an hour off, and says so once", async () => {
  // A store that refuses a request dated more than 15 minutes from its clock (as S3 does).
  const store = scripted((_, req) => {
    const d = req.headers["x-amz-date"]!;
    const t = Date.parse(
      `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}T${d.slice(9, 11)}:${d.slice(11, 13)}:${
        d.slice(13, 15)
      }Z`,
    );
    return Math.abs(t - Date.now()) > 15 * 60_000
      ? { status: 403, body: error("RequestTimeTooSkewed") }
      : { status: 200 };
  });
  const warnings: string[] = [];
  const { c } = client(store.endpoint, {
    now: () => Date.now() - 3_600_000,
    warn: (l) => warnings.push(l),
  });
  try {
    await c.put("a", enc.encode("x"));
    await c.put("b", enc.encode("x"));
    assert.equal(store.seen.length, 3, "one refusal, then every request signed right");
    assert.equal(c.stats.retries.skew, 1);
    assert.equal(warnings.length, 1);
    assert.match(
      warnings[0]!,
      /^this machine's clock is 3600 s behind the S3 endpoint http:\/\/127\.0\.0\.1:\d+'s; signing S3 requests with the store's time/,
    );
  } finally {
    c.close();
    await store.close();
  }
  // Without a Date to learn from, the refusal says what is wrong (not "check the key").
  const blind = scripted(() => ({
    status: 403,
    body: error("RequestTimeTooSkewed"),
    headers: { date: "" },
  }));
  const b = client(blind.endpoint).c;
  try {
    await assert.rejects(
      b.put("a", enc.encode("x")),
      /this machine's clock is .* the S3 endpoint http:\S+'s \(RequestTimeTooSkewed\); fix the clock/,
    );
  } finally {
    b.close();
    await blind.close();
  }
});

Deno.test("S3Client reads credentials again when the store says they expired, and sends the session token", async () => {
  const store = scripted((_, req) =>
    req.headers["x-amz-security-token"] === "old"
      ? { status: 400, body: error("ExpiredToken") }
      : { status: 200 }
  );
  let reads = 0;
  const source = new RefreshingSource(() =>
    Promise.resolve({
      credentials: {
        accessKeyId: "a",
        secretAccessKey: "b",
        sessionToken: ++reads === 1 ? "old" : "new",
      },
    })
  );
  const { c } = client(store.endpoint, { credentials: source });
  try {
    await c.put("k", enc.encode("x"));
    assert.deepEqual(store.seen.map((s) => s.headers["x-amz-security-token"]), ["old", "new"]);
    assert.match(
      store.seen[1]!.headers["authorization"]!,
      /SignedHeaders=[^,]*x-amz-security-token/,
    );
    assert.equal(c.stats.retries.credentials, 1);
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client.completeMultipart(): a retry after a lost answer that finds no upload is done", async () => {
  const store = scripted((n) => n === 1 ? "reset" : { status: 404, body: error("NoSuchUpload") });
  const { c } = client(store.endpoint);
  try {
    await c.completeMultipart("k", "u1", ["e1"]);
    assert.equal(store.seen.length, 2);
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client.deleteMany() sends 1,000 keys per request and names the first it could not delete", async () => {
  const store = scripted((_, req) =>
    req.body.includes("<Key>bad</Key>")
      ? {
        status: 200,
        body:
          "<DeleteResult><Error><Key>bad</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>",
      }
      : { status: 200, body: "<DeleteResult></DeleteResult>" }
  );
  const { c } = client(store.endpoint);
  try {
    await c.deleteMany(Array.from({ length: 2500 }, (_, i) => `wal/${i}`));
    assert.equal(store.seen.length, 3);
    assert.ok(store.seen.every((s) => s.method === "POST" && s.target.endsWith("?delete=")));
    assert.ok(store.seen.every((s) => s.headers["content-md5"]));
    assert.equal(store.seen[0]!.body.match(/<Object>/g)?.length, 1000);
    await assert.rejects(
      c.deleteMany(["ok", "bad"]),
      /S3 did not delete 1 of 2 objects; the first: s3:\/\/bk\/bad \(AccessDenied: no\)/,
    );
  } finally {
    c.close();
    await store.close();
  }
});

Deno.test("S3Client sends SSE and storage-class headers where S3 wants them", async () => {
  const store = scripted(() => ({
    status: 200,
    body: "<InitiateMultipartUploadResult><UploadId>u</UploadId></InitiateMultipartUploadResult>",
  }));
  const key = btoa(String.fromCharCode(...new Uint8Array(32).fill(7)));
  const { c } = client(store.endpoint, { sse: { kind: "c", key }, storageClass: "STANDARD_IA" });
  const kms = client(store.endpoint, { sse: { kind: "kms", keyId: "alias/pg" } }).c;
  try {
    await c.put("k", enc.encode("x"));
    await c.get("k");
    await c.createMultipart("m");
    await c.uploadPart("m", "u", 1, enc.encode("x"));
    await c.list("");
    await kms.put("k", enc.encode("x"));
    const h = store.seen.map((s) => s.headers);
    for (const i of [0, 1, 2, 3]) {
      assert.equal(h[i]!["x-amz-server-side-encryption-customer-algorithm"], "AES256");
      assert.equal(h[i]!["x-amz-server-side-encryption-customer-key"], key);
      assert.equal(
        h[i]!["x-amz-server-side-encryption-customer-key-md5"],
        "y4HAEFCYWuvAXWFTtA1Qpg==",
      );
    }
    assert.equal(h[0]!["x-amz-storage-class"], "STANDARD_IA");
    assert.equal(h[1]!["x-amz-storage-class"], undefined);
    assert.equal(h[4]!["x-amz-server-side-encryption-customer-key"], undefined, "not on a listing");
    assert.equal(h[5]!["x-amz-server-side-encryption"], "aws:kms");
    assert.equal(h[5]!["x-amz-server-side-encryption-aws-kms-key-id"], "alias/pg");
  } finally {
    c.close();
    kms.close();
    await store.close();
  }
});
