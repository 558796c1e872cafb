import assert from "node:assert/strict";
import { headEnd, parseHead, renderResponse } from "./wire.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("parseHead() reads GET and HEAD with their path, the query dropped", () => {
  assert.deepEqual(parseHead(bytes("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")), {
    kind: "request",
    method: "GET",
    path: "/healthz",
  });
  assert.deepEqual(parseHead(bytes("HEAD /metrics?x=1 HTTP/1.0\n\n")), {
    kind: "request",
    method: "HEAD",
    path: "/metrics",
  });
  assert.deepEqual(parseHead(bytes("\r\nGET http://h:9188/readyz HTTP/1.1\r\n\r\n")), {
    kind: "request",
    method: "GET",
    path: "/readyz",
  });
});

Deno.test("parseHead() waits for the blank line, and refuses a head over the cap with 431", () => {
  assert.deepEqual(parseHead(bytes("GET /healthz HTTP/1.1\r\nHost: x\r\n")), { kind: "need-more" });
  const big = bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}`);
  assert.deepEqual(parseHead(big, 300), { kind: "need-more" });
  const r = parseHead(big, 100);
  assert.equal(r.kind === "reject" && r.status, 431);
  // A complete head that is still over the cap is refused too.
  const r2 = parseHead(bytes(`GET / HTTP/1.1\r\nX: ${"a".repeat(200)}\r\n\r\n`), 100);
  assert.equal(r2.kind === "reject" && r2.status, 431);
});

Deno.test("parseHead() refuses other methods (405 with Allow), bad request lines and HTTP/2", () => {
  const post = parseHead(bytes("POST /healthz HTTP/1.1\r\n\r\n"));
  assert.deepEqual(post, {
    kind: "reject",
    status: 405,
    body: "GET or HEAD only\n",
    headers: { allow: "GET, HEAD" },
  });
  for (const bad of ["GET\r\n\r\n", "GET /a b HTTP/1.1\r\n\r\n", "GET x HTTP/1.1\r\n\r\n"]) {
    const r = parseHead(bytes(bad));
    assert.equal(r.kind === "reject" && r.status, 400, bad);
  }
  const h2 = parseHead(bytes("GET / HTTP/2.0\r\n\r\n"));
  assert.equal(h2.kind === "reject" && h2.status, 505);
});

Deno.test("headEnd() finds CRLF CRLF and LF LF", () => {
  assert.equal(headEnd(bytes("a\r\n\r\nrest")), 5);
  assert.equal(headEnd(bytes("a\n\nrest")), 3);
  assert.equal(headEnd(bytes("a\r\nb\r\n")), -1);
});

Deno.test("renderResponse() sets Content-Length and Connection: close; HEAD has no body", () => {
  const res = { status: 503, body: "failed\n" };
  assert.equal(
    text(renderResponse(res)),
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n" +
      "content-length: 7\r\nconnection: close\r\n\r\nfailed\n",
  );
  assert.ok(text(renderResponse(res, { head: true })).endsWith("connection: close\r\n\r\n"));
  const metrics = renderResponse({
    status: 200,
    body: "x 1\n",
    headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
  });
  assert.match(text(metrics), /^content-type: text\/plain; version=0\.0\.4; charset=utf-8\r$/m);
});
