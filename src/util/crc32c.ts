/**
 * CRC-32C (Castagnoli), as PostgreSQL's COMP_CRC32C/FIN_CRC32C: slicing-by-8 tables, so a
 * 16 MiB WAL segment takes ~30 ms with V8's JIT and ~0.65 s without (`--jitless`, as the
 * image runs) instead of ~1 s byte by byte.
 */
const T: Uint32Array[] = Array.from({ length: 8 }, () => new Uint32Array(256));
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  T[0]![n] = c >>> 0;
}
for (let n = 0; n < 256; n++) {
  let c = T[0]![n]!;
  for (let t = 1; t < 8; t++) {
    c = T[0]![c & 0xff]! ^ (c >>> 8);
    T[t]![n] = c >>> 0;
  }
}
const [t0, t1, t2, t3, t4, t5, t6, t7] = T as [
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
  Uint32Array,
];

/** The running state before finalisation; start with CRC32C_INIT, end with crc32cFinish. */
export const CRC32C_INIT = 0xffffffff;

export function crc32cUpdate(state: number, b: Uint8Array): number {
  let c = state;
  let i = 0;
  const n = b.length;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (; i + 8 <= n; i += 8) {
    const a = dv.getUint32(i, true) ^ c;
    const d = dv.getUint32(i + 4, true);
    c = t7[a & 0xff]! ^ t6[(a >>> 8) & 0xff]! ^ t5[(a >>> 16) & 0xff]! ^ t4[a >>> 24]! ^
      t3[d & 0xff]! ^ t2[(d >>> 8) & 0xff]! ^ t1[(d >>> 16) & 0xff]! ^ t0[d >>> 24]!;
  }
  for (; i < n; i++) c = t0[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

export function crc32cFinish(state: number): number {
  return (state ^ 0xffffffff) >>> 0;
}

export function crc32c(bytes: Uint8Array): number {
  return crc32cFinish(crc32cUpdate(CRC32C_INIT, bytes));
}
