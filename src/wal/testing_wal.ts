/**
 * Synthetic WAL for the unit tests of the WAL reader and the archive (not a shipped code path):
 * records with valid headers and CRCs, page headers, continuation pages and switch records.
 */
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from "../util/crc32c.ts";
import { PAGE_BYTES } from "./reader.ts";

/** Records of the given data lengths from the first record of segment 1 (small segments by default, so records cross them). */
export function buildWal(
  lengths: number[],
  o: { tli?: number; switchAt?: number; segmentBytes?: number; magic?: number; sysid?: bigint } =
    {},
) {
  const tli = o.tli ?? 1;
  const SEG = o.segmentBytes ?? PAGE_BYTES * 3;
  const magic = o.magic ?? 0xd110;
  const SYSID = o.sysid ?? 7000000000000000042n;
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
    v.setUint16(0, magic, true);
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
