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
