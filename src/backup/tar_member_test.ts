import assert from "node:assert/strict";
import { TarMember } from "./tar_member.ts";

function header(name: string, size: number): Uint8Array {
  const h = new Uint8Array(512);
  h.set(new TextEncoder().encode(name));
  h.set(new TextEncoder().encode(size.toString(8).padStart(11, "0") + "\0"), 124);
  h[156] = 0x30;
  return h;
}

function tar(members: [string, Uint8Array][]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, data] of members) {
    parts.push(header(name, data.length), data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) (out.set(p, off), off += p.length);
  return out;
}

Deno.test("TarMember finds backup_manifest in a tar stream read in any chunks", () => {
  const manifest = new TextEncoder().encode(
    '{"PostgreSQL-Backup-Manifest-Version": 2}\n'.repeat(50),
  );
  const stream = tar([
    ["PG_VERSION", new TextEncoder().encode("17\n")],
    ["base/1/1259", new Uint8Array(9000).fill(3)],
    ["backup_manifest", manifest],
  ]);
  for (const step of [1, 511, 512, 4096, stream.length]) {
    const t = new TarMember("backup_manifest");
    for (let o = 0; o < stream.length; o += step) t.push(stream.subarray(o, o + step));
    assert.deepEqual(t.found, manifest, `chunks of ${step}`);
  }
  const none = new TarMember("backup_manifest");
  none.push(tar([["PG_VERSION", new Uint8Array(3)]]));
  assert.equal(none.found, undefined);
});
