/**
 * EFFECT: turn one WAL file into what gets uploaded, checked to be what its name says
 * (validate.ts): a planted link or a file of another cluster never reaches the store. Then the
 * body's SHA-256 is signed into the request (SigV4), so the store refuses a body corrupted on
 * the way. Integrity at rest and on restore comes from the codec's own checksum (zstd frames
 * carry an XXH64 of the content, gzip a CRC-32) and the size kept in metadata.
 *
 * Three ways, same bytes stored:
 * - `prepareSegmentByTool` (the supervisor, a compressed segment): root reads the first page
 *   only (as postgres, no link, a regular file postgres owns; fs/handover.ts readOwnedHead) and
 *   the compressor, run as postgres, reads the file by itself; the size its output declares
 *   must be the file's. 16 MiB are neither read nor piped by us: that is most of the supervisor's CPU
 *   per segment under --jitless.
 * - `external`: the file read once, by us, as postgres and without following a link
 *   (readOwnedFile), then fed to the compressor on stdin (history files, codec none);
 * - `inline`: compressed in this process (a hand-run archive command; Deno runs node:zlib on
 *   the calling thread, which would stall the supervisor's event loop ~20 ms per segment).
 */
import { readOwnedFile, readOwnedHead } from "../fs/handover.ts";
import type { Owner } from "../fs/identity.ts";
import { ArchiveError } from "./errors.ts";
import { type Codec, compress, declaredSize } from "./codec.ts";
import { command } from "../process/command.ts";
import { outputTracked, spawnTracked } from "../process/registry.ts";
import {
  maxWalFileBytes,
  SEGMENT_HEAD_BYTES,
  segmentProblem,
  type WalExpect,
  walFileProblem,
} from "./validate.ts";
import { walKind } from "./names.ts";

export interface Prepared {
  name: string;
  path: string;
  /** Uncompressed size. */
  size: number;
  codec: Codec;
  body: Uint8Array;
  /**
   * The body's SHA-256 when it came for free (openssl hashed an uncompressed file); else the S3
   * client hashes what it sends (once: a body sealed after this would make an earlier hash
   * wasted work).
   */
  bodySha256?: string;
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
    throw readError(name, path, error);
  }
  const problem = walFileProblem(name, data, expect);
  if (problem) throw new ArchiveError(`refusing to archive ${name}: ${problem}`, false);
  return data;
}

function readError(name: string, path: string, error: unknown): ArchiveError {
  if (error instanceof Deno.errors.NotFound) {
    return new ArchiveError(`${name}: ${path} does not exist`, false, error);
  }
  return new ArchiveError(
    `${name}: ${error instanceof Error ? error.message : error}`,
    false,
    error,
  );
}

export async function prepareInline(
  path: string,
  name: string,
  data: Uint8Array,
  codec: Codec,
): Promise<Prepared> {
  const body = await compress(codec, data);
  return { name, path, size: data.length, codec, body };
}

const TOOL: Record<Codec, string[]> = {
  // One thread for everything: zstd's default worker thread doubles its CPU per segment, and
  // its I/O threads (asyncio, on by default since 1.5.3) cost another ~35% here in futex
  // hand-offs and thread setup, for one 16 MiB file.
  zstd: ["zstd", "-1", "-q", "-c", "--single-thread", "--no-asyncio"],
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
  if (!out.success) throw new Error(toolFailure(tool, out));
  return out.stdout;
}

/** "<tool> failed: <its last stderr line, or the exit code>". */
function toolFailure(tool: string[], out: Deno.CommandOutput): string {
  const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
  return `${tool[0]} failed: ${why || `exit ${out.code}`}`;
}

/**
 * A segment compressed by a tool that reads the file by itself, run as the file's owner
 * (postgres): the supervisor neither reads 16 MiB nor pipes them through. Root reads only the
 * first page, as readWalFile does (no link, a regular file postgres owns, the header this
 * cluster's); the tool, as postgres, can read nothing postgres could not; the size the
 * compressed body declares must be the file's. Undefined when this way does not apply (no
 * tools, codec none, not a segment): the caller reads the file.
 */
export async function prepareSegmentByTool(
  path: string,
  name: string,
  o: { codec: Codec; expect: WalExpect; owner: Owner | undefined },
): Promise<Prepared | undefined> {
  const kind = walKind(name);
  if (o.codec === "none" || (kind !== "segment" && kind !== "partial")) return undefined;
  if (!(await externalToolsAvailable())) return undefined;
  let head: Uint8Array;
  let size: number;
  try {
    ({ head, size } = await readOwnedHead(path, o.owner, {
      maxBytes: maxWalFileBytes(name, o.expect.segmentBytes),
      bytes: SEGMENT_HEAD_BYTES,
    }));
  } catch (error) {
    throw readError(name, path, error);
  }
  const problem = segmentProblem(name, { head, size, expect: o.expect });
  if (problem) throw new ArchiveError(`refusing to archive ${name}: ${problem}`, false);
  const tool = TOOL[o.codec];
  const out = await outputTracked(
    command(tool[0]!, {
      args: [...tool.slice(1), "--", path],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(o.owner ? { uid: o.owner.uid, gid: o.owner.gid } : {}),
    }),
  );
  if (!out.success) throw new ArchiveError(`${name}: ${toolFailure(tool, out)}`, true);
  const body = out.stdout;
  const declared = declaredSize(o.codec, body);
  const want = o.codec === "gzip" ? size % 2 ** 32 : size; // gzip keeps the size mod 2^32
  if (declared !== want) {
    throw new ArchiveError(
      `${name}: ${tool[0]} read ${
        declared ?? "an unknown number of"
      } bytes of ${size}; the file changed while it was compressed`,
      true,
    );
  }
  return { name, path, size, codec: o.codec, body };
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
  return { name, path, size: data.length, codec, body: out };
}
