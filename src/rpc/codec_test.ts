import assert from "node:assert/strict";
import {
  encodeFrame,
  FrameDecoder,
  MAX_REQUEST_BYTES,
  parseRequest,
  parseResponse,
  PROTOCOL_VERSION,
} from "./codec.ts";

function decodeAll(bytes: Uint8Array, max?: number) {
  const d = new FrameDecoder(max);
  d.push(bytes);
  const out = [];
  for (;;) {
    const r = d.next();
    if (r.kind !== "frame") return { frames: out, last: r };
    out.push(r.payload);
  }
}

Deno.test("encodeFrame()/FrameDecoder round-trip requests and responses, split anywhere", () => {
  const req = { v: 1, id: 7, cmd: "status", args: { verbose: true } };
  const bytes = new Uint8Array([
    ...encodeFrame(req),
    ...encodeFrame({ v: 1, id: "x", cmd: "health" }),
  ]);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new FrameDecoder();
    d.push(bytes.subarray(0, cut));
    const got = [];
    let r = d.next();
    while (r.kind === "frame") (got.push(r.payload), (r = d.next()));
    d.push(bytes.subarray(cut));
    r = d.next();
    while (r.kind === "frame") (got.push(r.payload), (r = d.next()));
    assert.equal(got.length, 2, `cut at ${cut}`);
    const first = parseRequest(got[0]!);
    assert.ok(first.ok);
    assert.deepEqual(first.value, { v: 1, id: 7, cmd: "status", args: { verbose: true } });
  }
  const res = parseResponse(
    encodeFrame({ v: 1, id: 7, ok: true, result: { state: "running" } }).subarray(4),
  );
  assert.ok(res.ok && res.value.ok);
});

Deno.test("FrameDecoder refuses an oversized frame before buffering it", () => {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_REQUEST_BYTES + 1, false);
  const r = decodeAll(header);
  assert.deepEqual(r.last, {
    kind: "error",
    code: "too_large",
    message: `frame of ${MAX_REQUEST_BYTES + 1} bytes exceeds the limit of ${MAX_REQUEST_BYTES}`,
  });
});

Deno.test("parseRequest() names what is wrong", () => {
  const p = (s: string) => parseRequest(new TextEncoder().encode(s));
  assert.deepEqual(p("{"), {
    ok: false,
    id: null,
    code: "bad_frame",
    message: "frame is not UTF-8 JSON",
  });
  assert.equal((p("[1]") as { code: string }).code, "bad_frame");
  assert.equal(
    (p('{"v":1,"cmd":"x"}') as { message: string }).message,
    "request has no string or number id",
  );
  assert.deepEqual(p('{"v":2,"id":1,"cmd":"x"}'), {
    ok: false,
    id: 1,
    code: "bad_version",
    message: "protocol version 2 is not supported; use 1",
  });
  assert.equal((p('{"v":1,"id":1,"cmd":"x","args":[1]}') as { code: string }).code, "bad_frame");
  assert.equal((parseRequest(new Uint8Array([0xff, 0xfe])) as { code: string }).code, "bad_frame");
});

/** Deterministic PRNG so failures reproduce. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

Deno.test("property: 10,000 random and truncated frames never throw; each is a frame, an error or incomplete", () => {
  const rand = rng(42);
  const valid = encodeFrame({ v: PROTOCOL_VERSION, id: 1, cmd: "health" });
  for (let i = 0; i < 10_000; i++) {
    let bytes: Uint8Array;
    const kind = i % 4;
    if (kind === 0) { // random garbage
      bytes = new Uint8Array(Math.floor(rand() * 64)).map(() => Math.floor(rand() * 256));
    } else if (kind === 1) { // a valid frame cut short
      bytes = valid.subarray(0, Math.floor(rand() * valid.length));
    } else if (kind === 2) { // a valid header with random bytes as the body
      const n = Math.floor(rand() * 200);
      bytes = new Uint8Array(4 + n);
      new DataView(bytes.buffer).setUint32(0, n, false);
      for (let k = 4; k < bytes.length; k++) bytes[k] = Math.floor(rand() * 256);
    } else { // a valid frame with bytes flipped
      bytes = valid.slice();
      for (let k = 0; k < 3; k++) {
        bytes[Math.floor(rand() * bytes.length)] = Math.floor(rand() * 256);
      }
    }
    const d = new FrameDecoder();
    d.push(bytes);
    for (let guard = 0; guard < 100; guard++) {
      const r = d.next();
      if (r.kind === "frame") {
        const parsed = parseRequest(r.payload);
        assert.ok(parsed.ok || typeof parsed.code === "string");
        continue;
      }
      assert.ok(r.kind === "need-more" || r.kind === "error");
      break;
    }
  }
});
