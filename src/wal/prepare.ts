/**
 * EFFECT: turn one WAL file into what gets uploaded. The file is read once, by us, as postgres
 * and without following a link (fs/handover.ts readOwnedFile), and checked to be what its name
 * says (validate.ts) — a planted link or a file of another cluster never reaches the store.
 * Then those very bytes are compressed, and the body's SHA-256 is signed into the request
 * (SigV4), so the store refuses a body corrupted on the way. Integrity at rest and on restore
 * comes from the codec's own checksum (zstd frames carry an XXH64 of the content, gzip a
 * CRC-32) and the size kept in metadata.
 *
 * Two ways, same bytes: `external` runs the compressor as one child process fed on stdin (the
 * supervisor: Deno runs node:zlib on the calling thread, which would stall the event loop ~20
 * ms per segment), `inline` compresses in this process (a hand-run archive command).
 */
import { readOwnedFile } from "../fs/handover.ts";
import type { Owner } from "../fs/identity.ts";
import { sha256Hex } from "../util/crypto.ts";
import { ArchiveError } from "./errors.ts";
import { type Codec, compress } from "./codec.ts";
import { command } from "../process/command.ts";
import { outputTracked, spawnTracked } from "../process/registry.ts";
import { maxWalFileBytes, type WalExpect, walFileProblem } from "./validate.ts";

export interface Prepared {
  name: string;
  path: string;
  /** Uncompressed size. */
  size: number;
  codec: Codec;
  body: Uint8Array;
  bodySha256: string;
  /** The key that sealed the body (client-side encryption: keys.ts sealPrepared). */
  keyId?: string;
}

/**
 * The file's bytes, read safely (as `owner`, no link, a regular file `owner` owns) and checked
 * against its name and this cluster. Refusals are ArchiveErrors that are not transient.
 */
export async function readWalFile(
  path: string,
  name: string,
  expect: WalExpect,
  owner: Owner | undefined,
): Promise<Uint8Array> {
  let data: Uint8Array;
  try {
    data = await readOwnedFile(path, owner, maxWalFileBytes(name, expect.segmentBytes));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ArchiveError(`${name}: ${path} does not exist`, false, error);
    }
    throw new ArchiveError(
      `${name}: ${error instanceof Error ? error.message : error}`,
      false,
      error,
    );
  }
  const problem = walFileProblem(name, data, expect);
  if (problem) throw new ArchiveError(`refusing to archive ${name}: ${problem}`, false);
  return data;
}

export async function prepareInline(
  path: string,
  name: string,
  data: Uint8Array,
  codec: Codec,
): Promise<Prepared> {
  const body = await compress(codec, data);
  return { name, path, size: data.length, codec, body, bodySha256: await sha256Hex(body) };
}

const TOOL: Record<Codec, string[]> = {
  zstd: ["zstd", "-1", "-q", "-c"],
  gzip: ["gzip", "-1", "-c"],
  none: ["openssl", "dgst", "-sha256", "-r"],
};

let toolsChecked: Promise<boolean> | undefined;

/** zstd, gzip and openssl are on PATH (checked once). */
export function externalToolsAvailable(): Promise<boolean> {
  toolsChecked ??= outputTracked(
    command("sh", {
      args: ["-c", "command -v zstd && command -v gzip && command -v openssl"],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }),
  ).then((o) => o.success, () => false);
  return toolsChecked;
}

/** Run `tool` with `input` on stdin; its stdout. */
async function pipeThrough(tool: string[], input: Uint8Array): Promise<Uint8Array> {
  const child = spawnTracked(
    command(tool[0]!, { args: tool.slice(1), stdin: "piped", stdout: "piped", stderr: "piped" }),
  );
  const writer = child.stdin.getWriter();
  const feed = writer.write(input).then(() => writer.close()).catch(() => {});
  const [out] = await Promise.all([child.output(), feed]);
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    throw new Error(`${tool[0]} failed: ${why || `exit ${out.code}`}`);
  }
  return out.stdout;
}

export async function prepareExternal(
  path: string,
  name: string,
  data: Uint8Array,
  codec: Codec,
): Promise<Prepared> {
  const out = await pipeThrough(TOOL[codec], data);
  if (codec === "none") {
    // The body is the file itself; openssl hashed it off the event loop.
    return {
      name,
      path,
      size: data.length,
      codec,
      body: data,
      bodySha256: new TextDecoder().decode(out).slice(0, 64),
    };
  }
  // A compressed segment is small (WAL compresses 3–30×): hashing it here is ~1 ms.
  return { name, path, size: data.length, codec, body: out, bodySha256: await sha256Hex(out) };
}
