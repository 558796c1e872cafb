/**
 * The transport against small TCP servers on loopback that misbehave on purpose (tests/ has
 * the same against radosgw behind a fault proxy).
 */
import assert from "node:assert/strict";
import { HttpError, HttpTransport } from "./http.ts";

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A request as the server saw it. */
interface Seen {
  head: string;
  body: number;
}

/** A loopback server running `serve` for each connection; closes everything on `close()`. */
function rawServer(serve: (conn: Deno.Conn, n: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const state = { accepted: 0 };
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      serve(conn, state.accepted++).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    state,
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

/** Read one request (head, and a Content-Length body unless `skipBody`). */
async function readRequest(conn: Deno.Conn, o: { skipBody?: boolean } = {}): Promise<Seen | null> {
  let buf = "";
  const one = new Uint8Array(1);
  while (!buf.endsWith("\r\n\r\n")) {
    if ((await conn.read(one)) === null) return null;
    buf += String.fromCharCode(one[0]!);
  }
  const length = Number(buf.match(/content-length: (\d+)/i)?.[1] ?? 0);
  let left = o.skipBody ? 0 : length;
  const chunk = new Uint8Array(64 * 1024);
  while (left > 0) {
    const n = await conn.read(chunk.subarray(0, Math.min(left, chunk.length)));
    if (n === null) break;
    left -= n;
  }
  return { head: buf, body: length - left };
}

async function writeAll(conn: Deno.Conn, s: string | Uint8Array): Promise<void> {
  const bytes = typeof s === "string" ? enc.encode(s) : s;
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

async function failure(p: Promise<unknown>): Promise<{ error: HttpError; ms: number }> {
  const t0 = performance.now();
  try {
    await p;
  } catch (error) {
    if (error instanceof HttpError) return { error, ms: performance.now() - t0 };
    throw error;
  }
  throw new Error("the request did not fail");
}

Deno.test("HttpTransport: a body that trickles in is read whole; one that stops fails after idleMs", async () => {
  const server = rawServer(async (conn) => {
    for (;;) {
      const req = await readRequest(conn);
      if (!req) return;
      await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n");
      const bytes = req.head.startsWith("GET /stop") ? 5 : 20;
      for (let i = 0; i < bytes; i++) {
        await sleep(30); // 600 ms in all, far past idleMs: only the gaps count
        await writeAll(conn, "x");
      }
      if (bytes < 20) await sleep(5000);
    }
  });
  const http = new HttpTransport({ idleMs: 200 });
  try {
    const res = await http.request({
      method: "GET",
      url: new URL(`${server.url}/ok`),
      headers: {},
    });
    assert.equal(await res.text(), "x".repeat(20));
    const stop = await http.request({
      method: "GET",
      url: new URL(`${server.url}/stop`),
      headers: {},
    });
    const { error, ms } = await failure(stop.text());
    assert.equal(error.kind, "idle");
    assert.equal(error.message, "no progress for 0.2 s after 5 B of 20 B received");
    assert.ok(ms < 200 + 5 * 30 + 300, `failed after ${ms} ms`);
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("HttpTransport: a store that never answers fails with 'no answer' after idleMs", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await sleep(5000);
  });
  const http = new HttpTransport({ idleMs: 300 });
  try {
    const { error, ms } = await failure(
      http.request({ method: "HEAD", url: new URL(`${server.url}/k`), headers: {} }),
    );
    assert.equal(error.message, "no answer for 0.3 s after sending the request");
    assert.ok(ms >= 290 && ms < 1000, `failed after ${ms} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport: an upload the store stops reading fails with how much was sent", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn, { skipBody: true });
    await sleep(10_000); // reads nothing more: socket buffers fill, then writes stall
  });
  const http = new HttpTransport({ idleMs: 300 });
  try {
    const body = new Uint8Array(64 << 20);
    const { error, ms } = await failure(
      http.request({ method: "PUT", url: new URL(`${server.url}/k`), headers: {}, body }),
    );
    assert.equal(error.kind, "idle");
    assert.match(error.message, /^no progress for 0\.3 s after [\d.]+ [KM]iB of 64\.0 MiB sent$/);
    assert.ok(ms < 3000, `failed after ${ms} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport: an upload into a slow reader is not cut off while its socket buffer drains", async () => {
  // 64 KiB every 20 ms (3 MB/s): the kernel wakes a blocked write only once a third of a
  // ~4 MiB send buffer is free (~0.4 s here), and the last write returns with up to 4 MiB still
  // queued. Only the send queue shrinking shows that the store keeps reading.
  const server = rawServer(async (conn) => {
    const req = await readRequest(conn, { skipBody: true });
    let left = Number(req!.head.match(/content-length: (\d+)/i)![1]);
    const buf = new Uint8Array(64 * 1024);
    while (left > 0) {
      await sleep(20);
      const n = await conn.read(buf.subarray(0, Math.min(left, buf.length)));
      if (n === null) return;
      left -= n;
    }
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  });
  const http = new HttpTransport({ idleMs: 300 });
  try {
    const t0 = performance.now();
    const res = await http.request({
      method: "PUT",
      url: new URL(`${server.url}/k`),
      headers: {},
      body: new Uint8Array(8 << 20),
    });
    assert.equal(res.status, 200);
    assert.ok(performance.now() - t0 > 1000, "the reader was slow");
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("HttpTransport reuses a kept-alive connection, and resends an idempotent request once when the store had closed it", async () => {
  const server = rawServer(async (conn, n) => {
    // The first connection answers two requests then closes, as a store does with idle ones.
    for (let i = 0; i < (n === 0 ? 2 : 100); i++) {
      const req = await readRequest(conn);
      if (!req) return;
      await writeAll(conn, `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
    }
  });
  const http = new HttpTransport({});
  const get = async (method = "GET") => {
    const res = await http.request({ method, url: new URL(`${server.url}/k`), headers: {} });
    return await res.text();
  };
  try {
    assert.equal(await get(), "ok");
    assert.equal(await get(), "ok");
    assert.equal(http.connections, 1);
    await sleep(50); // the store has closed the first connection by now
    assert.equal(await get(), "ok");
    assert.equal(http.connections, 2, "resent on a new connection");
    assert.equal(await get(), "ok");
    assert.equal(http.connections, 2);
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("HttpTransport does not resend a POST on a connection the store closed", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await writeAll(conn, `HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`);
  });
  const http = new HttpTransport({});
  try {
    const url = new URL(`${server.url}/k`);
    assert.equal(await (await http.request({ method: "POST", url, headers: {} })).text(), "ok");
    await sleep(50);
    const { error } = await failure(http.request({ method: "POST", url, headers: {} }));
    assert.equal(error.kind, "closed");
    assert.match(error.message, /^the connection was closed before an answer/);
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("HttpTransport reads a chunked body split at every byte", async () => {
  const wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
    "4\r\nWiki\r\n6;x=y\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\n";
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    for (const ch of wire) {
      await writeAll(conn, ch);
      await sleep(1);
    }
    await readRequest(conn); // kept alive: a second request on the same connection
    await writeAll(conn, "HTTP/1.1 204 No Content\r\n\r\n");
  });
  const http = new HttpTransport({});
  try {
    const res = await http.request({ method: "GET", url: new URL(server.url + "/"), headers: {} });
    assert.equal(await res.text(), "Wikipedia in \r\n\r\nchunks.");
    const del = await http.request({ method: "DELETE", url: new URL(server.url), headers: {} });
    assert.equal(del.status, 204);
    assert.equal(del.body, null);
    assert.equal(http.connections, 1);
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("HttpTransport refuses a head over 64 KiB and a bad chunk size as bad answers", async () => {
  const server = rawServer(async (conn) => {
    const req = await readRequest(conn);
    if (req!.head.startsWith("GET /big")) {
      await writeAll(conn, `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`);
    } else {
      await writeAll(conn, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    }
    await sleep(2000);
  });
  const http = new HttpTransport({ idleMs: 1000 });
  try {
    const big = await failure(
      http.request({ method: "GET", url: new URL(`${server.url}/big`), headers: {} }),
    );
    assert.equal(big.error.kind, "protocol");
    assert.equal(big.error.message, "bad answer: response head larger than 65536 bytes");
    const res = await http.request({ method: "GET", url: new URL(`${server.url}/c`), headers: {} });
    const chunk = await failure(res.text());
    assert.equal(chunk.error.message, 'bad answer: bad chunk size "zz"');
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport: a store that refuses an upload early is heard, not reported as a reset", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn, { skipBody: true });
    const body = "<Error><Code>Denied</Code></Error>";
    await writeAll(
      conn,
      `HTTP/1.1 403 Forbidden\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    conn.closeWrite();
    await sleep(200);
  });
  const http = new HttpTransport({ idleMs: 2000 });
  try {
    const res = await http.request({
      method: "PUT",
      url: new URL(`${server.url}/k`),
      headers: {},
      body: new Uint8Array(32 << 20),
    });
    assert.equal(res.status, 403);
    assert.match(await res.text(), /<Code>Denied<\/Code>/);
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport: an abort signal and a deadline end a request that is still moving", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (let i = 0; i < 1000; i++) {
      await sleep(10);
      await writeAll(conn, "x");
    }
  });
  const http = new HttpTransport({ idleMs: 1000 });
  try {
    const url = new URL(`${server.url}/k`);
    const late = await failure(
      http.request({ method: "GET", url, headers: {}, deadlineMs: 300 }).then((r) => r.text()),
    );
    assert.equal(late.error.kind, "deadline");
    assert.match(
      late.error.message,
      /^not done within the deadline of 0\.3 s \(after \d+ B of 1000 B received\)$/,
    );
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(new Error("cancelled by the test")), 200);
    await assert.rejects(
      http.request({ method: "GET", url, headers: {}, signal: ctl.signal }).then((r) => r.text()),
      /cancelled by the test/,
    );
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport: connection refused, and a TLS handshake that never comes, fail within connectMs", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const freePort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const http = new HttpTransport({ connectMs: 300 });
  const refused = await failure(
    http.request({ method: "GET", url: new URL(`http://127.0.0.1:${freePort}/`), headers: {} }),
  );
  assert.equal(refused.error.kind, "connect");
  assert.match(
    refused.error.message,
    new RegExp(`^cannot connect to 127\\.0\\.0\\.1:${freePort}: `),
  );
  const server = rawServer(() => sleep(5000)); // accepts, says nothing
  try {
    const url = new URL(server.url.replace("http:", "https:"));
    const tls = await failure(http.request({ method: "GET", url, headers: {} }));
    assert.equal(tls.error.kind, "tls");
    assert.equal(tls.error.message, `no TLS handshake with ${url.host} within 0.3 s`);
    assert.ok(tls.ms < 1000, `failed after ${tls.ms} ms`);
  } finally {
    await server.close();
  }
});

Deno.test("HttpTransport passes its errors through wrapError, body reads included", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  });
  const http = new HttpTransport({});
  try {
    const res = await http.request({
      method: "GET",
      url: new URL(`${server.url}/k`),
      headers: {},
      wrapError: (e) => new Error(`wrapped: ${e.message}`),
    });
    await assert.rejects(
      res.text(),
      /^Error: wrapped: the connection was closed after 3 B of 10 B received$/,
    );
  } finally {
    await server.close();
  }
});
