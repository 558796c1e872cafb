/**
 * EFFECT: turn one WAL file into what gets uploaded: its SHA-256 and size (stored as metadata,
 * compared when the same name is archived again), the compressed body and the body's SHA-256
 * (signed into the request, so the store refuses a corrupted upload).
 *
 * Two ways, same result: `external` runs zstd/gzip and sha256sum in a child process, so the
 * supervisor's event loop never stalls on 16 MiB of hashing and compression (Deno runs both
 * WebCrypto digests and node:zlib on the calling thread); `inline` does it in this process
 * (the standalone archive command, or when the tools are missing).
 */
import { sha256Hex } from "../s3/sigv4.ts";
import { type Codec, compress } from "./codec.ts";

export interface Prepared {
  name: string;
  size: number;
  sha256: string;
  codec: Codec;
  body: Uint8Array;
  bodySha256: string;
  /** The first bytes of the file (the page header with the system identifier). */
  head: Uint8Array;
}

export async function prepareInline(path: string, name: string, codec: Codec): Promise<Prepared> {
  const data = await Deno.readFile(path);
  const body = await compress(codec, data);
  const sha256 = await sha256Hex(data);
  return {
    name,
    size: data.length,
    sha256,
    codec,
    body,
    bodySha256: body === data ? sha256 : await sha256Hex(body),
    head: data.slice(0, 64),
  };
}

const TOOL: Record<Codec, string> = {
  zstd: `zstd -1 -q -c -- "$1" > "$2"`,
  gzip: `gzip -1 -c -- "$1" > "$2"`,
  none: `:`,
};

let toolsChecked: Promise<boolean> | undefined;
/**
 * SHA-256 of files, "<hex> ..." per line: openssl uses the CPU's SHA instructions (16 MiB in
 * ~9 ms here, coreutils' sha256sum ~40 ms); sha256sum where there is no openssl.
 */
export let HASH = "openssl dgst -sha256 -r";

/** zstd, gzip and a SHA-256 tool are on PATH (checked once). */
export function externalToolsAvailable(): Promise<boolean> {
  toolsChecked ??= (async () => {
    const has = async (script: string) =>
      (await new Deno.Command("sh", { args: ["-c", script], stdout: "null", stderr: "null" })
        .output().catch(() => ({ success: false }))).success;
    if (!(await has("command -v zstd && command -v gzip"))) return false;
    if (await has("command -v openssl")) return true;
    HASH = "sha256sum";
    return await has("command -v sha256sum");
  })();
  return toolsChecked;
}

export async function prepareExternal(
  path: string,
  name: string,
  codec: Codec,
  tmpDir: string,
): Promise<Prepared> {
  const tmp = `${tmpDir}/${name}.${crypto.randomUUID().slice(0, 8)}.body`;
  const script = `set -e; ${TOOL[codec]}; ${HASH} "$1"${codec === "none" ? "" : ` "$2"`}`;
  try {
    const out = await new Deno.Command("sh", {
      args: ["-c", script, "prepare", path, tmp],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
      throw new Error(`cannot read or compress ${path}: ${why || `exit ${out.code}`}`);
    }
    const sums = new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => l.slice(0, 64));
    const body = await Deno.readFile(codec === "none" ? path : tmp);
    const file = await Deno.open(path);
    const head = new Uint8Array(64);
    try {
      await file.read(head);
    } finally {
      file.close();
    }
    const size = codec === "none" ? body.length : (await Deno.stat(path)).size;
    return {
      name,
      size,
      sha256: sums[0]!,
      codec,
      body,
      bodySha256: codec === "none" ? sums[0]! : sums[1]!,
      head,
    };
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
}
