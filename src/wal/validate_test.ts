import assert from "node:assert/strict";
import { maxWalFileBytes, walFileProblem } from "./validate.ts";

const SYSID = "7000000000000000001";

function segment(name: string, o: { magic?: number; tli?: number; sysid?: bigint } = {}) {
  const seg = new Uint8Array(16 << 20);
  const v = new DataView(seg.buffer);
  v.setUint16(0, o.magic ?? 0xd110, true);
  v.setUint16(2, 0x0002, true);
  v.setUint32(4, o.tli ?? parseInt(name.slice(0, 8), 16), true);
  const segno = BigInt(parseInt(name.slice(8, 16), 16)) * 256n +
    BigInt(parseInt(name.slice(16, 24), 16));
  v.setBigUint64(8, segno * BigInt(16 << 20), true);
  v.setBigUint64(24, o.sysid ?? BigInt(SYSID), true);
  v.setUint32(32, 16 << 20, true);
  v.setUint32(36, 8192, true);
  return seg;
}

const expect = { major: 15, sysid: SYSID };
const text = (s: string) => new TextEncoder().encode(s);

Deno.test("walFileProblem() accepts a segment of this cluster, and a new timeline's first copy", () => {
  const name = "000000020000000100000003";
  assert.equal(walFileProblem(name, segment(name), expect), undefined);
  assert.equal(walFileProblem(name, segment(name, { tli: 1 }), expect), undefined);
  assert.equal(walFileProblem(`${name}.partial`, segment(name), expect), undefined);
});

Deno.test("walFileProblem() refuses what is not this cluster's segment of that name", () => {
  const name = "000000010000000000000005";
  assert.match(walFileProblem(name, new Uint8Array(16 << 20), expect)!, /page magic/);
  assert.match(walFileProblem(name, segment(name, { magic: 0xd113 }), expect)!, /magic/);
  assert.match(walFileProblem(name, segment(name, { tli: 3 }), expect)!, /timeline 3/);
  assert.match(
    walFileProblem(name, segment("000000010000000000000006"), expect)!,
    /page address/,
  );
  assert.match(walFileProblem(name, segment(name, { sysid: 42n }), expect)!, /another cluster/);
  assert.match(walFileProblem(name, segment(name).subarray(0, 8192), expect)!, /bytes/);
  assert.match(walFileProblem("../../etc/passwd", text("x"), expect)!, /not a WAL file name/);
});

Deno.test("walFileProblem() parses history and backup history files", () => {
  assert.equal(
    walFileProblem("00000002.history", text("1\t0/3000000\tno recovery target\n"), expect),
    undefined,
  );
  assert.equal(
    walFileProblem("00000003.history", text("1\t0/3000000\ta\n\n2\t0/5000000\tb\n"), expect),
    undefined,
  );
  assert.match(
    walFileProblem("00000002.history", text("root:x:0:0::/root:/bin/sh\n"), expect)!,
    /not "timeline/,
  );
  assert.match(
    walFileProblem("00000002.history", text("2\t0/3000000\tx\n"), expect)!,
    /out of order/,
  );
  assert.match(walFileProblem("00000002.history", text(""), expect)!, /no parent/);
  assert.match(walFileProblem("00000002.history", new Uint8Array([0xff, 0xfe]), expect)!, /text/);
  assert.equal(
    walFileProblem(
      "000000010000000000000002.00000028.backup",
      text("START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"),
      expect,
    ),
    undefined,
  );
  assert.match(
    walFileProblem("000000010000000000000002.00000028.backup", text("x"), expect)!,
    /START/,
  );
});

Deno.test("maxWalFileBytes(): a segment's size, small for text files", () => {
  assert.equal(maxWalFileBytes("000000010000000000000002"), 16 << 20);
  assert.equal(maxWalFileBytes("00000002.history"), 1 << 20);
});
