import assert from "node:assert/strict";
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from "../util/crc32c.ts";
import { firstRecord, PAGE_BYTES, segmentBytes, type WalFormat, walk } from "./reader.ts";

const SEG = PAGE_BYTES * 3; // small segments so records cross them
const fmt: WalFormat = { magic: 0xd110, segmentBytes: SEG };
const SYSID = 7000000000000000042n;

/** Synthetic WAL: records of the given data lengths from the first segment's first record. */
function build(lengths: number[], o: { tli?: number; switchAt?: number } = {}) {
  const tli = o.tli ?? 1;
  const segs = new Map<bigint, Uint8Array>();
  const at = (lsn: bigint) => {
    const n = lsn / BigInt(SEG);
    if (!segs.has(n)) segs.set(n, new Uint8Array(SEG));
    return { seg: segs.get(n)!, off: Number(lsn % BigInt(SEG)) };
  };
  const pageHeader = (page: bigint, remLen: number) => {
    const long = page % BigInt(SEG) === 0n;
    const { seg, off } = at(page);
    const v = new DataView(seg.buffer, off);
    v.setUint16(0, fmt.magic, true);
    v.setUint16(2, (remLen > 0 ? 1 : 0) | (long ? 2 : 0), true);
    v.setUint32(4, tli, true);
    v.setBigUint64(8, page, true);
    v.setUint32(16, remLen, true);
    if (long) {
      v.setBigUint64(24, SYSID, true);
      v.setUint32(32, SEG, true);
      v.setUint32(36, PAGE_BYTES, true);
    }
    return long ? 40 : 24;
  };
  let pos = BigInt(SEG); // segment 1
  pos += BigInt(pageHeader(pos, 0));
  let prev = 0n;
  const starts: bigint[] = [];
  lengths.forEach((len, i) => {
    const total = 24 + len;
    const rec = new Uint8Array(total);
    const v = new DataView(rec.buffer);
    v.setUint32(0, total, true);
    v.setBigUint64(8, prev, true);
    if (o.switchAt === i) rec[16] = 0x40; // XLOG_SWITCH, rmgr 0
    else rec[17] = 10;
    for (let k = 24; k < total; k++) rec[k] = (k * 31 + i) & 0xff;
    v.setUint32(
      20,
      crc32cFinish(crc32cUpdate(crc32cUpdate(CRC32C_INIT, rec.subarray(24)), rec.subarray(0, 20))),
      true,
    );
    if (pos % BigInt(PAGE_BYTES) === 0n) pos += BigInt(pageHeader(pos, 0));
    starts.push(pos);
    prev = pos;
    let written = 0;
    while (written < total) {
      if (pos % BigInt(PAGE_BYTES) === 0n) {
        pos += BigInt(pageHeader(pos, written === 0 ? 0 : total - written));
      }
      const { seg, off } = at(pos);
      const take = Math.min(total - written, PAGE_BYTES - (off % PAGE_BYTES));
      seg.set(rec.subarray(written, written + take), off);
      written += take;
      pos += BigInt(take);
    }
    if (o.switchAt === i) {
      const next = ((pos + BigInt(SEG) - 1n) / BigInt(SEG)) * BigInt(SEG);
      for (
        let p = ((pos + BigInt(PAGE_BYTES) - 1n) / BigInt(PAGE_BYTES)) * BigInt(PAGE_BYTES);
        p < next;
        p += BigInt(PAGE_BYTES)
      ) pageHeader(p, 0);
      pos = next;
    } else pos = (pos + 7n) & ~7n;
    if (pos % BigInt(PAGE_BYTES) === 0n && i === lengths.length - 1) pageHeader(pos, 0);
  });
  return { segs, starts, end: pos };
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
