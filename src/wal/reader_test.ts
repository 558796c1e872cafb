import assert from "node:assert/strict";
import {
  firstRecord,
  PAGE_BYTES,
  runsToSegmentEnd,
  segmentBytes,
  switchEndIn,
  type WalFormat,
  walk,
} from "./reader.ts";
import { buildWal } from "./testing_wal.ts";

const SEG = PAGE_BYTES * 3; // small segments so records cross them
const fmt: WalFormat = { magic: 0xd110, segmentBytes: SEG };
const SYSID = 7000000000000000042n;

function build(lengths: number[], o: { tli?: number; switchAt?: number } = {}) {
  return buildWal(lengths, { ...o, segmentBytes: SEG, magic: fmt.magic, sysid: SYSID });
}

const opts = { format: fmt, timeline: 1, sysid: SYSID };

Deno.test("walk(): records across pages and segments, to the zeros after the last", () => {
  const lengths = [100, 9000, 50, 20000, 7, 3000, 40000, 16];
  const w = build(lengths);
  const r = walk(segmentBytes(w.segs, SEG), w.starts[0]!, opts);
  assert.equal(r.records, lengths.length);
  assert.equal(r.last, w.starts.at(-1));
  assert.equal(r.end, w.end);
  assert.equal(r.stop, "end");
});

Deno.test("walk(): a record header split across pages (8 bytes left on the page)", () => {
  // 40 (long header) + 24 + 8120 = 8184: the second record starts 8 bytes before the page ends.
  const w = build([8120, 100, 50]);
  assert.equal(w.starts[1]! % BigInt(PAGE_BYTES), BigInt(PAGE_BYTES - 8));
  const r = walk(segmentBytes(w.segs, SEG), w.starts[0]!, opts);
  assert.equal(r.records, 3);
  assert.equal(r.end, w.end);
  assert.equal(r.stop, "end");
});

Deno.test("walk(): a flipped byte ends the WAL at that record (CRC), a missing segment at its start", () => {
  const w = build([100, 200, 300, 400]);
  const bad = new Map([...w.segs].map(([k, v]) => [k, v.slice()]));
  const victim = w.starts[2]! + 30n;
  bad.get(victim / BigInt(SEG))![Number(victim % BigInt(SEG))]! ^= 1;
  const r = walk(segmentBytes(bad, SEG), w.starts[0]!, opts);
  assert.equal(r.stop, "bad-crc");
  assert.equal(r.records, 2);
  assert.equal(r.end, w.starts[2]);

  const long = build([100, 30000, 30000]);
  const cut = new Map([...long.segs].filter(([k]) => k < 2n));
  const c = walk(segmentBytes(cut, SEG), long.starts[0]!, opts);
  assert.equal(c.stop, "no-data");
  assert.equal(c.end, long.starts[1], "a record cut off by the missing segment is not valid");
});

Deno.test("walk(): an old recycled page, another cluster's segment and a switch record", () => {
  const w = build([100, 20000, 100]);
  const recycled = new Map([...w.segs].map(([k, v]) => [k, v.slice()]));
  new DataView(recycled.get(1n)!.buffer).setBigUint64(PAGE_BYTES + 8, 123n * BigInt(SEG), true);
  const r = walk(segmentBytes(recycled, SEG), w.starts[0]!, opts);
  assert.equal(r.stop, "bad-page");
  assert.match(r.detail, /recycled/);

  const crossing = build([100, 30000, 100]);
  const other = walk(segmentBytes(crossing.segs, SEG), crossing.starts[0]!, { ...opts, sysid: 1n });
  assert.equal(other.records, 1);
  assert.match(other.detail, /system identifier/);

  const sw = build([100, 50, 100], { switchAt: 1 });
  const s = walk(segmentBytes(sw.segs, SEG), sw.starts[0]!, opts);
  assert.equal(s.records, 3);
  assert.equal(sw.starts[2]! % BigInt(SEG), 40n, "the record after a switch starts a segment");
});

Deno.test("firstRecord(): skips what continues from the previous segment", () => {
  const w = build([100, 30000, 100, 100]);
  const f = firstRecord(segmentBytes(w.segs, SEG), 2n * BigInt(SEG), opts);
  assert.ok("lsn" in f);
  assert.equal(f.lsn, w.starts[2]);
  const r = walk(segmentBytes(w.segs, SEG), f.lsn, opts);
  assert.equal(r.records, 2);
  assert.equal(r.end, w.end);
});

Deno.test("switchEndIn(): where a segment's switch record ends; the padding after it is never read", () => {
  const sw = build([100, 5000, 50], { switchAt: 2 });
  const file = sw.segs.get(1n)!;
  const end = switchEndIn(file, 1n, opts);
  assert.equal(end, Number(sw.starts[2]! - BigInt(SEG)) + 24 + 50);
  // A standby that lost its primary mid-padding: zeros, or a recycled file's bytes, after it.
  const zeros = file.slice();
  zeros.fill(0, end!);
  assert.equal(switchEndIn(zeros, 1n, opts), end);
  const junk = file.slice();
  for (let i = end!; i < junk.length; i++) junk[i] = (i * 7) & 0xff;
  assert.equal(switchEndIn(junk, 1n, opts), end);
  // No switch (the WAL just stops), or a switch record that fails its CRC: no switch end.
  assert.equal(switchEndIn(build([100, 5000, 50]).segs.get(1n)!, 1n, opts), undefined);
  const bad = file.slice();
  bad[end! - 1] = bad[end! - 1]! ^ 0xff;
  assert.equal(switchEndIn(bad, 1n, opts), undefined);
  // Another cluster's segment.
  assert.equal(switchEndIn(file, 1n, { ...opts, sysid: 1n }), undefined);
  // Lengths and links only (crc: false) still find it; the CRC is for callers that need it.
  assert.equal(switchEndIn(bad, 1n, { ...opts, crc: false }), end);
});

Deno.test("runsToSegmentEnd(): a switch or a last record at the end, not WAL that stops short", () => {
  const sw = build([100, 5000, 50], { switchAt: 2 });
  assert.ok(runsToSegmentEnd(sw.segs.get(1n)!, 1n, opts));
  const short = sw.segs.get(1n)!.slice();
  short.fill(0, Number(sw.starts[2]! - BigInt(SEG)));
  assert.ok(!runsToSegmentEnd(short, 1n, opts), "the switch record never arrived");
  // A record that continues in the next segment: this file alone does not end the WAL.
  const crossing = build([100, 30000, 100]);
  assert.ok(!runsToSegmentEnd(crossing.segs.get(1n)!, 1n, opts));
});
