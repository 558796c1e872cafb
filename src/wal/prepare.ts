/**
 * EFFECT: turn one WAL file into what gets uploaded: the compressed body and its SHA-256,
 * which is signed into the request (SigV4), so the store refuses a body corrupted on the way.
 * Integrity at rest and on restore comes from the codec's own checksum (zstd frames carry an
 * XXH64 of the content, gzip a CRC-32) and the size kept in metadata; an object that already
 * exists is compared byte for byte (archive.ts), so no hash of the 16 MiB file is needed.
 *
 * Two ways, same bytes: `external` runs the compressor as one child process (the supervisor:
 * Deno runs node:zlib on the calling thread, which would stall the event loop ~20 ms per
 * segment), `inline` compresses in this process (the standalone archive command).
 */
import { sha256Hex } from "../util/crypto.ts";
import { type Codec, compress } from "./codec.ts";
import { outputTracked } from "../process/registry.ts";

export interface Prepared {
  name: string;
  path: string;
  /** Uncompressed size. */
  size: number;
  codec: Codec;
  body: Uint8Array;
  bodySha256: string;
  /** The first bytes of the file (the page header with the system identifier). */
  head: Uint8Array;
}

export async function prepareInline(path: string, name: string, codec: Codec): Promise<Prepared> {
  const data = await Deno.readFile(path);
  const body = await compress(codec, data);
  return {
    name,
    path,
    size: data.length,
    codec,
    body,
    bodySha256: await sha256Hex(body),
    head: data.slice(0, 64),
  };
}

const TOOL: Record<Codec, string[]> = {
  zstd: ["zstd", "-1", "-q", "-c", "--"],
  gzip: ["gzip", "-1", "-c", "--"],
  none: ["openssl", "dgst", "-sha256", "-r", "--"],
};

let toolsChecked: Promise<boolean> | undefined;

/** zstd, gzip and openssl are on PATH (checked once). */
export function externalToolsAvailable(): Promise<boolean> {
  toolsChecked ??= outputTracked(
    new Deno.Command("sh", {
      args: ["-c", "command -v zstd && command -v gzip && command -v openssl"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }),
  ).then((o) => o.success, () => false);
  return toolsChecked;
}

async function readHead(path: string): Promise<{ head: Uint8Array; size: number }> {
  const file = await Deno.open(path);
  try {
    const head = new Uint8Array(64);
    let got = 0;
    while (got < head.length) {
      const n = await file.read(head.subarray(got));
      if (n === null) break;
      got += n;
    }
    return { head: head.subarray(0, got), size: (await file.stat()).size };
  } finally {
    file.close();
  }
}

export async function prepareExternal(path: string, name: string, codec: Codec): Promise<Prepared> {
  const [cmd, ...args] = TOOL[codec];
  const out = await outputTracked(
    new Deno.Command(cmd!, {
      args: [...args, path],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new Error(`cannot read or compress ${path}: ${why || `${cmd} exit ${out.code}`}`);
  }
  const { head, size } = await readHead(path);
  if (codec === "none") {
    // The body is the file itself; openssl hashed it off the event loop.
    const body = await Deno.readFile(path);
    return {
      name,
      path,
      size: body.length,
      codec,
      body,
      bodySha256: new TextDecoder().decode(out.stdout).slice(0, 64),
      head,
    };
  }
  // A compressed segment is small (WAL compresses 3–30×): hashing it here is ~1 ms.
  return {
    name,
    path,
    size,
    codec,
    body: out.stdout,
    bodySha256: await sha256Hex(out.stdout),
    head,
  };
}
