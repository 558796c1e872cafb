import assert from "node:assert/strict";
import {
  ChunkedDecoder,
  decoderFor,
  findHeadEnd,
  framing,
  HEAD_LIMIT,
  parseHead,
  ProtocolError,
  renderHead,
} from "./http_parse.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Feed `wire` to a fresh decoder in pieces of `size` bytes; the body and what was left over. */
function decodeInPieces(wire: string, size: number) {
  const d = new ChunkedDecoder();
  const bytes = enc.encode(wire);
  let body = "";
  let done = false;
  let extra = 0;
  for (let i = 0; i < bytes.length && !done; i += size) {
    const r = d.push(bytes.subarray(i, i + size));
    body += r.data.map((c) => dec.decode(c)).join("");
    done = r.done;
    extra = r.extra + Math.max(0, bytes.length - (i + size));
  }
  return { body, done, extra };
}

Deno.test("renderHead() writes the request line and headers, and refuses a line break in a value", () => {
  const head = dec.decode(
    renderHead("PUT", "/bk/a%20b?uploads=", [["host", "s3:7480"], ["content-length", "3"]]),
  );
  assert.equal(
    head,
    "PUT /bk/a%20b?uploads= HTTP/1.1\r\nhost: s3:7480\r\ncontent-length: 3\r\n\r\n",
  );
  assert.throws(() => renderHead("GET", "/", [["x-amz-meta-a", "1\r\nevil: 2"]]), /line break/);
  assert.throws(() => renderHead("GET", "/a b", []), /invalid request target/);
  assert.throws(() => renderHead("GET", "/", [["bad name", "v"]]), /invalid header name/);
});

Deno.test("parseHead() reads the status line and headers (names lower-cased, repeats kept)", () => {
  const wire = "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\nX-Amz-Meta-A:  v1 \r\n" +
    "x-amz-meta-a: v2\r\n\r\n";
  const bytes = enc.encode(wire);
  assert.equal(findHeadEnd(bytes), bytes.length);
  const head = parseHead(bytes);
  assert.deepEqual(head, {
    minor: 1,
    status: 404,
    reason: "Not Found",
    headers: [["content-length", "12"], ["x-amz-meta-a", "v1"], ["x-amz-meta-a", "v2"]],
  });
  assert.equal(parseHead(enc.encode("HTTP/1.0 200\r\n\r\n")).reason, "");
});

Deno.test("findHeadEnd() finds CRLFCRLF split across reads", () => {
  const a = enc.encode("HTTP/1.1 200 OK\r\nA: b\r\n\r");
  assert.equal(findHeadEnd(a), -1);
  const b = enc.encode("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody");
  assert.equal(findHeadEnd(b, a.length), b.length - 4);
});

Deno.test("parseHead() refuses a bad status line, a bad header line and a head over 64 KiB", () => {
  assert.throws(() => parseHead(enc.encode("HTTP/2 200 OK\r\n\r\n")), ProtocolError);
  assert.throws(() => parseHead(enc.encode("HTTP/1.1 600 Odd\r\n\r\n")), /bad status line/);
  assert.throws(() => parseHead(enc.encode("SSH-2.0-OpenSSH\r\n\r\n")), /bad status line/);
  assert.throws(
    () => parseHead(enc.encode("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n")),
    /bad header line/,
  );
  assert.throws(
    () => parseHead(enc.encode("HTTP/1.1 200 OK\r\n folded: line\r\n\r\n")),
    /bad header line/,
  );
  const big = `HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(HEAD_LIMIT)}\r\n\r\n`;
  assert.throws(() => parseHead(enc.encode(big)), /response head larger than 65536 bytes/);
});

Deno.test("framing() follows RFC 9112: none for HEAD/204/304, chunked before length, else until close", () => {
  const head = (status: number, headers: [string, string][], minor = 1) => ({
    minor,
    status,
    reason: "",
    headers,
  });
  const len = head(200, [["content-length", "5"]]);
  assert.deepEqual(framing("GET", len), { body: { kind: "length", length: 5 }, reusable: true });
  assert.deepEqual(framing("HEAD", len), { body: { kind: "none" }, reusable: true });
  assert.deepEqual(framing("DELETE", head(204, [])).body, { kind: "none" });
  assert.deepEqual(framing("GET", head(304, [["content-length", "9"]])).body, { kind: "none" });
  assert.deepEqual(framing("PUT", head(200, [["content-length", "0"]])).body, { kind: "none" });
  assert.deepEqual(
    framing("GET", head(200, [["transfer-encoding", "chunked"]])),
    { body: { kind: "chunked" }, reusable: true },
  );
  // Both: chunked wins, and the connection is not trusted again.
  assert.deepEqual(
    framing("GET", head(200, [["transfer-encoding", "chunked"], ["content-length", "5"]])),
    { body: { kind: "chunked" }, reusable: false },
  );
  assert.deepEqual(framing("GET", head(200, [])), { body: { kind: "close" }, reusable: false });
  assert.equal(
    framing("GET", head(200, [["connection", "close"], ...len.headers])).reusable,
    false,
  );
  assert.equal(framing("GET", head(200, len.headers, 0)).reusable, false);
  assert.throws(
    () => framing("GET", head(200, [["content-length", "5"], ["content-length", "6"]])),
    /bad Content-Length 5, 6/,
  );
  assert.throws(() => framing("GET", head(200, [["content-length", "-1"]])), /bad Content-Length/);
  assert.throws(
    () => framing("GET", head(200, [["transfer-encoding", "gzip, chunked"]])),
    /unsupported transfer coding/,
  );
});

Deno.test("a Content-Length body ends at its length; bytes past it are counted as extra", () => {
  const d = decoderFor({ kind: "length", length: 5 });
  const a = d.push(enc.encode("abc"));
  assert.deepEqual([a.data.map((c) => dec.decode(c)), a.done], [["abc"], false]);
  const b = d.push(enc.encode("deXYZ"));
  assert.deepEqual([b.data.map((c) => dec.decode(c)), b.done, b.extra], [["de"], true, 3]);
  assert.equal(d.endsAtClose, false);
  assert.equal(decoderFor({ kind: "close" }).endsAtClose, true);
});

Deno.test("ChunkedDecoder decodes the same body whatever the split, trailers and extensions included", () => {
  const wire = "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nx-trailer: t\r\n\r\n";
  for (const size of [1, 2, 3, 5, 7, 11, 1000]) {
    assert.deepEqual(decodeInPieces(wire, size), {
      body: "hello 0123456789",
      done: true,
      extra: 0,
    });
  }
  assert.deepEqual(decodeInPieces("3\r\nabc\r\n0\r\n\r\nNEXT", 4), {
    body: "abc",
    done: true,
    extra: 4,
  });
  assert.deepEqual(decodeInPieces("3\r\nabc\r\n", 2), { body: "abc", done: false, extra: 0 });
});

Deno.test("ChunkedDecoder refuses a bad chunk size, a missing CRLF and an endless size line", () => {
  assert.throws(() => new ChunkedDecoder().push(enc.encode("zz\r\n")), /bad chunk size "zz"/);
  assert.throws(() => new ChunkedDecoder().push(enc.encode("-1\r\n")), /bad chunk size/);
  assert.throws(
    () => new ChunkedDecoder().push(enc.encode("fffffffffffffffff\r\n")),
    /bad chunk size/,
  );
  assert.throws(
    () => new ChunkedDecoder().push(enc.encode("3\r\nabcX\r\n")),
    /not followed by CRLF/,
  );
  assert.throws(() => new ChunkedDecoder().push(enc.encode("3\nabc")), /not ended by CRLF/);
  assert.throws(
    () => new ChunkedDecoder().push(enc.encode("1".repeat(5000))),
    /chunk size line too long/,
  );
});
