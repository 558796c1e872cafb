/**
 * WAL compression, recorded in each object's metadata (beyond-codec) so any reader can tell.
 * zstd level 1 by default: on real WAL ~5.7× smaller at ~400 MB/s, which matters more than
 * parallelism when the store's CPU is the bottleneck. gzip and none for comparison and for
 * stores where CPU is scarcer than bandwidth.
 */
import { WAL_OBJECT_MAX_BYTES } from "./target.ts";

export type Codec = "zstd" | "gzip" | "none";

export const CODECS: readonly Codec[] = ["zstd", "gzip", "none"];

let zlib: typeof import("node:zlib") | undefined;
async function lib(): Promise<typeof import("node:zlib")> {
  return (zlib ??= await import("node:zlib"));
}

export async function compress(codec: Codec, data: Uint8Array): Promise<Uint8Array> {
  if (codec === "none") return data;
  const z = await lib();
  if (codec === "gzip") return new Uint8Array(z.gzipSync(data, { level: 1 }));
  return new Uint8Array(
    z.zstdCompressSync(data, { params: { [z.constants.ZSTD_c_compressionLevel]: 1 } }),
  );
}

/**
 * The uncompressed size a compressed body declares, or undefined when it declares none: a zstd
 * frame's content size (the zstd CLI writes it for a file), a gzip member's ISIZE (mod 2^32).
 * Checks that a compressor reading a file by itself read all of it.
 */
export function declaredSize(codec: Codec, body: Uint8Array): number | undefined {
  const v = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (codec === "gzip") return body.length >= 18 ? v.getUint32(body.length - 4, true) : undefined;
  if (codec !== "zstd" || body.length < 6 || v.getUint32(0, true) !== 0xfd2fb528) return undefined;
  const fhd = body[4]!;
  const single = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = fcsFlag === 0 ? single : [0, 2, 4, 8][fcsFlag]!;
  if (!fcsBytes) return undefined;
  const at = 5 + (single ? 0 : 1) + dictBytes;
  if (body.length < at + fcsBytes) return undefined;
  if (fcsBytes === 1) return body[at]!;
  if (fcsBytes === 2) return v.getUint16(at, true) + 256;
  if (fcsBytes === 4) return v.getUint32(at, true);
  return Number(v.getBigUint64(at, true));
}

/** Decompress; output larger than `maxBytes` (a small object that inflates without end) throws. */
export async function decompress(
  codec: string,
  data: Uint8Array,
  { maxBytes = WAL_OBJECT_MAX_BYTES }: { maxBytes?: number } = {},
): Promise<Uint8Array> {
  if (codec === "none" || codec === "") return data;
  const z = await lib();
  const o = { maxOutputLength: maxBytes };
  try {
    if (codec === "gzip") return new Uint8Array(z.gunzipSync(data, o));
    if (codec === "zstd") return new Uint8Array(z.zstdDecompressSync(data, o));
  } catch (error) {
    if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE") {
      throw new Error(`decompresses to more than ${maxBytes} bytes`, { cause: error });
    }
    throw error;
  }
  throw new Error(`unknown codec ${JSON.stringify(codec)}`);
}
