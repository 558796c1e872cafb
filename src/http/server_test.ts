import assert from "node:assert/strict";
import { getrlimit, RLIMIT_NOFILE, setrlimit } from "../../ffi/mod.ts";
import { setLogWriter } from "../util/log.ts";
import { type HttpHandlers, type HttpServer, serveHttp } from "./server.ts";

const handlers: HttpHandlers = {
  live: () => true,
  ready: () => Promise.resolve({ ready: true, reason: "5432 serves queries" }),
  metrics: () => Promise.resolve("beyond_pg_up 1\n"),
};

const loopback = { hostname: "127.0.0.1", port: 0 };

/** Send `request` raw, read until the server closes (or `ms`): the response text. */
async function raw(server: HttpServer, request: string, ms = 5000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const timer = setTimeout(() => conn.close(), ms);
  try {
    await conn.write(new TextEncoder().encode(request));
    return await new Response(conn.readable).text();
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when the server closes `conn` (read → EOF or reset), with the time it took. */
async function closedWithin(conn: Deno.Conn): Promise<number> {
  const t0 = performance.now();
  const buf = new Uint8Array(1024);
  try {
    while ((await conn.read(buf)) !== null) { /* discard */ }
  } catch { /* reset */ }
  conn.close();
  return performance.now() - t0;
}

Deno.test("serveHttp() answers /healthz, /readyz, /metrics, 404; HEAD without a body; POST 405", async () => {
  const server = serveHttp(loopback, handlers);
  try {
    const health = await raw(server, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(health, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(health, /\r\nconnection: close\r\n/);
    assert.ok(health.endsWith("\r\n\r\nok\n"));
    assert.match(await raw(server, "GET /readyz HTTP/1.1\r\n\r\n"), /200 OK[^]*ready: 5432/);
    const metrics = await fetch(`http://127.0.0.1:${server.addr.port}/metrics`);
    assert.equal(metrics.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(await metrics.text(), "beyond_pg_up 1\n");
    assert.match(await raw(server, "GET /nope HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 404 /);
    const head = await raw(server, "HEAD /healthz HTTP/1.1\r\n\r\n");
    assert.match(head, /content-length: 3\r\n/);
    assert.ok(head.endsWith("\r\n\r\n"));
    assert.match(
      await raw(server, "POST /healthz HTTP/1.1\r\n\r\n"),
      /^HTTP\/1\.1 405 [^]*allow: GET, HEAD/,
    );
    const big = await raw(server, `GET / HTTP/1.1\r\nX: ${"a".repeat(9000)}\r\n\r\n`);
    assert.match(big, /^HTTP\/1\.1 431 /);
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveHttp() closes a connection that has not sent its request head in time", async () => {
  const server = serveHttp(loopback, handlers, { headTimeoutMs: 300 });
  try {
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    const trickle = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    // Bytes that keep coming do not extend the deadline.
    const drip = setInterval(
      () => trickle.write(new TextEncoder().encode("G")).catch(() => {}),
      50,
    );
    const [a, b] = await Promise.all([closedWithin(silent), closedWithin(trickle)]);
    clearInterval(drip);
    assert.ok(a < 2000 && b < 2000, `closed after ${a} and ${b} ms`);
    assert.equal(server.stats.timedOut, 2);
    assert.equal(server.open, 0);
  } finally {
    await server.shutdown();
  }
});

/** Log lines written while `f` runs. */
async function capturingLog(f: (lines: string[]) => Promise<void>): Promise<void> {
  const lines: string[] = [];
  const previous = setLogWriter((l) => lines.push(l));
  try {
    await f(lines);
  } finally {
    setLogWriter(previous);
  }
}

Deno.test("serveHttp() holds at most maxConnections; silent ones make room for a prober", () =>
  capturingLog(async (lines) => {
    const server = serveHttp(loopback, handlers, { maxConnections: 4, headTimeoutMs: 30_000 });
    const silent: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 50; i++) {
        silent.push(await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }));
      }
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(server.open <= 4, `${server.open} open`);
      assert.ok(server.stats.evicted >= 46, `${server.stats.evicted} evicted`);
      assert.match(await raw(server, "GET /healthz HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 200 /);
      assert.equal(lines.length, 1, "one warning a minute at most");
      assert.match(lines[0]!, /all 4 connection slots taken, shedding connections/);
    } finally {
      for (const c of silent) c.close();
      await server.shutdown();
    }
  }));

Deno.test("serveHttp() refuses new connections at once while every slot is answering", () =>
  capturingLog(async () => {
    let release!: () => void;
    const slow = new Promise<string>((r) => (release = () => r("m 1\n")));
    const server = serveHttp(loopback, { ...handlers, metrics: () => slow }, { maxConnections: 2 });
    try {
      const scrapes = [
        raw(server, "GET /metrics HTTP/1.1\r\n\r\n"),
        raw(server, "GET /metrics HTTP/1.1\r\n\r\n"),
      ];
      while (server.open < 2) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50)); // both heads parsed: answering
      assert.equal(await raw(server, "GET /healthz HTTP/1.1\r\n\r\n"), "");
      assert.equal(server.stats.refused, 1);
      release();
      for (const s of await Promise.all(scrapes)) assert.match(s, /^HTTP\/1\.1 200 [^]*m 1\n$/);
    } finally {
      await server.shutdown();
    }
  }));

Deno.test("serveHttp() keeps listening through EMFILE and serves the waiting client once descriptors are free", async () => {
  const lines: string[] = [];
  const previousWriter = setLogWriter((l) => lines.push(l));
  const server = serveHttp(loopback, handlers);
  const before = getrlimit(RLIMIT_NOFILE);
  const held: Deno.FsFile[] = [];
  let conn: Deno.Conn | undefined;
  try {
    const open = [...Deno.readDirSync("/proc/self/fd")].length;
    setrlimit(RLIMIT_NOFILE, { soft: open + 16, hard: before.hard });
    try {
      for (;;) held.push(Deno.openSync("/dev/null"));
    } catch { /* EMFILE: the table is full */ }
    held.pop()!.close(); // room for the client's socket only
    conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
    await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\n\r\n"));
    await new Promise((r) => setTimeout(r, 400)); // accept fails with EMFILE, backs off
    for (const f of held.splice(0)) f.close();
    setrlimit(RLIMIT_NOFILE, before);
    const response = await new Response(conn.readable).text();
    conn = undefined;
    assert.match(response, /^HTTP\/1\.1 200 /);
    assert.ok(lines.some((l) => /accept failed \(Too many open files/.test(l)), lines.join("\n"));
    assert.ok(
      lines.some((l) => /accepting again after \d+ failed accepts/.test(l)),
      lines.join("\n"),
    );
  } finally {
    for (const f of held) f.close();
    setrlimit(RLIMIT_NOFILE, before);
    try {
      conn?.close();
    } catch { /* closed */ }
    await server.shutdown();
    setLogWriter(previousWriter);
  }
});
