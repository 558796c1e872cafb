import assert from "node:assert/strict";
import { compress, decompress } from "./codec.ts";
import {
  formatLsn,
  nextSegments,
  parseLsn,
  parseSegment,
  segmentName,
  segmentOfLsn,
  segmentSystemIdentifier,
  walKind,
} from "./names.ts";
import { Layout, parseTarget } from "./target.ts";

Deno.test("walKind() accepts exactly the names postgres archives", () => {
  assert.equal(walKind("000000010000000000000001"), "segment");
  assert.equal(walKind("000000010000000000000001.partial"), "partial");
  assert.equal(walKind("00000002.history"), "history");
  assert.equal(walKind("000000010000000000000002.00000028.backup"), "backup");
  for (
    const bad of [
      "../etc/passwd",
      "00000001000000000000001",
      "000000010000000000000001 ",
      "x.history",
      "",
    ]
  ) {
    assert.equal(walKind(bad), undefined, bad);
  }
});

Deno.test("segment names roll over from FF to the next log", () => {
  assert.deepEqual(nextSegments("0000000100000000000000FE", 3), [
    "0000000100000000000000FF",
    "000000010000000100000000",
    "000000010000000100000001",
  ]);
  const id = parseSegment("00000002000000030000000A")!;
  assert.equal(id.timeline, 2);
  assert.equal(segmentName(id), "00000002000000030000000A");
  assert.deepEqual(nextSegments("00000002.history", 2), []);
});

Deno.test("LSNs parse, format and map to segments", () => {
  const lsn = parseLsn("1/2000028")!;
  assert.equal(formatLsn(lsn), "1/2000028");
  assert.equal(segmentOfLsn(lsn), 256n + 2n);
  assert.equal(parseLsn("nope"), undefined);
});

Deno.test("segmentSystemIdentifier() reads xlp_sysid from a long page header", () => {
  const page = new Uint8Array(40);
  const v = new DataView(page.buffer);
  v.setUint16(0, 0xd110, true); // magic (any)
  v.setUint16(2, 0x0002, true); // XLP_LONG_HEADER
  v.setBigUint64(24, 7711362255787264593n, true);
  assert.equal(segmentSystemIdentifier(page), 7711362255787264593n);
  v.setUint16(2, 0, true);
  assert.equal(segmentSystemIdentifier(page), undefined);
});

Deno.test("parseTarget() and Layout put the major and system identifier in the prefix", () => {
  const t = parseTarget("s3://bucket/team/app/");
  assert.deepEqual(t, { bucket: "bucket", prefix: "team/app" });
  const l = new Layout(t, 15, "771");
  assert.equal(l.marker, "team/app/beyond-pg.json");
  assert.equal(l.wal("00000002.history"), "team/app/pg15-771/wal/00000002.history");
  assert.equal(l.backup("b1", "manifest.json"), "team/app/pg15-771/basebackups/b1/manifest.json");
  assert.equal(new Layout(parseTarget("s3://bkt"), 18, "1").wal("x"), "pg18-1/wal/x");
});

Deno.test("codecs round-trip", async () => {
  const data = new TextEncoder().encode("wal ".repeat(10_000));
  for (const codec of ["zstd", "gzip", "none"] as const) {
    const c = await compress(codec, data);
    assert.deepEqual(await decompress(codec, c), data);
    if (codec !== "none") assert.ok(c.length < data.length / 10);
  }
});
