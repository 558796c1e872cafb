/**
 * A segment compressed by the tool reading the file by itself (prepareSegmentByTool): the same
 * body a read-and-pipe gives, the header still checked by root, a link or a short file refused,
 * and the declared size checked (codec.ts declaredSize).
 */
import assert from "node:assert/strict";
import { compress, declaredSize, decompress } from "./codec.ts";
import { ArchiveError } from "./errors.ts";
import { externalToolsAvailable, prepareSegmentByTool } from "./prepare.ts";

const SYSID = 7000000000000000042n;
const SEG = 16 << 20;
const NAME = "000000010000000000000003";

function segment(name: string): Uint8Array {
  const seg = new Uint8Array(SEG);
  const v = new DataView(seg.buffer);
  v.setUint16(0, 0xd110, true);
  v.setUint16(2, 0x0002, true);
  v.setUint32(4, 1, true);
  v.setBigUint64(8, BigInt(parseInt(name.slice(16), 16)) * BigInt(SEG), true);
  v.setBigUint64(24, SYSID, true);
  v.setUint32(32, SEG, true);
  v.setUint32(36, 8192, true);
  for (let i = 8192; i < SEG; i += 4096) seg[i] = i % 251; // something to compress
  return seg;
}

const expect = { major: 15, sysid: String(SYSID) };

Deno.test("declaredSize(): zstd's frame content size, gzip's ISIZE, nothing for junk", async () => {
  const data = segment(NAME);
  // What the zstd CLI writes for a 16 MiB file: a 4-byte content size after the window byte.
  const frame = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x84, 0x48, 0, 0, 0, 1, 0, 0]);
  assert.equal(declaredSize("zstd", frame), SEG);
  // Single segment, 1-byte and 2-byte (+256) sizes.
  assert.equal(declaredSize("zstd", new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x20, 200, 0])), 200);
  assert.equal(declaredSize("zstd", new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x60, 1, 0, 0])), 257);
  // A streamed frame (node:zlib) declares none: the caller then cannot take this way.
  assert.equal(declaredSize("zstd", await compress("zstd", data)), undefined);
  assert.equal(declaredSize("gzip", await compress("gzip", data)), SEG);
  assert.equal(declaredSize("zstd", new Uint8Array(20)), undefined);
});

Deno.test("prepareSegmentByTool(): the tool's body decompresses to the file; links and strangers refused", async () => {
  if (!(await externalToolsAvailable())) return; // zstd/openssl not installed: the read path runs
  const dir = await Deno.makeTempDir({ prefix: "bpg-prepare-" });
  try {
    const data = segment(NAME);
    await Deno.writeFile(`${dir}/${NAME}`, data);
    for (const codec of ["zstd", "gzip"] as const) {
      const p = await prepareSegmentByTool(`${dir}/${NAME}`, NAME, {
        codec,
        expect,
        owner: undefined,
      });
      assert.ok(p);
      assert.equal(p.size, SEG);
      assert.deepEqual(await decompress(codec, p.body), data);
    }
    assert.equal(
      await prepareSegmentByTool(`${dir}/${NAME}`, NAME, {
        codec: "none",
        expect,
        owner: undefined,
      }),
      undefined,
    );
    assert.equal(
      await prepareSegmentByTool(`${dir}/00000002.history`, "00000002.history", {
        codec: "zstd",
        expect,
        owner: undefined,
      }),
      undefined,
    );

    const other = segment(NAME);
    new DataView(other.buffer).setBigUint64(24, 1n, true);
    await Deno.writeFile(`${dir}/${NAME}`, other);
    await assert.rejects(
      prepareSegmentByTool(`${dir}/${NAME}`, NAME, { codec: "zstd", expect, owner: undefined }),
      (e) => e instanceof ArchiveError && /another cluster/.test(e.message),
    );
    await Deno.writeFile(`${dir}/${NAME}`, data.subarray(0, SEG / 2));
    await assert.rejects(
      prepareSegmentByTool(`${dir}/${NAME}`, NAME, { codec: "zstd", expect, owner: undefined }),
      (e) => e instanceof ArchiveError && /bytes, this one is/.test(e.message),
    );
    await Deno.remove(`${dir}/${NAME}`);
    await Deno.writeFile(`${dir}/target`, data);
    await Deno.symlink(`${dir}/target`, `${dir}/${NAME}`);
    await assert.rejects(
      prepareSegmentByTool(`${dir}/${NAME}`, NAME, { codec: "zstd", expect, owner: undefined }),
      (e) => e instanceof ArchiveError && /is a link/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
