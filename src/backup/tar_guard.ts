/**
 * PURE: a gate on a tar stream before `tar -x` sees it. A base backup comes from the archive,
 * which whoever holds the bucket's keys can write; restore runs as root. Every member must be
 * a regular file or a directory with a relative path and no `..`: links (symbolic or hard),
 * devices and FIFOs, absolute paths, and pax or GNU headers that rename a member to such a
 * path are refused before a byte of them is extracted. (pg_basebackup writes pg_wal as a
 * directory even when it is a link; tablespace links are refused: one volume, no tablespaces.)
 */

export class TarRejected extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarRejected";
  }
}

const BLOCK = 512;
/** pax and GNU long-name headers are read whole; a real one is a few hundred bytes. */
const MAX_META = 64 * 1024;

function cString(b: Uint8Array): string {
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

function parseSize(field: Uint8Array): number {
  if (field[0]! & 0x80) {
    // base-256 (GNU): big-endian, top bit set.
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = cString(field).trim();
  if (!/^[0-7]*$/.test(text)) {
    throw new TarRejected(`a tar header has a bad size ${JSON.stringify(text)}`);
  }
  return text ? parseInt(text, 8) : 0;
}

/** The header checksum: all bytes summed with the checksum field as spaces. */
function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
  const stored = parseInt(cString(h.subarray(148, 156)).trim() || "x", 8);
  return stored === sum;
}

/** Why `path` may not be extracted, or undefined. */
export function memberPathProblem(path: string): string | undefined {
  if (!path) return "an empty member name";
  if (path.startsWith("/")) return `an absolute path ${JSON.stringify(path)}`;
  if (path.split("/").includes("..")) return `a path with .. ${JSON.stringify(path)}`;
  if (path.includes("\0")) return "a name with a NUL byte";
  return undefined;
}

/** pax records "LEN key=value\n": the path and linkpath they set. */
function paxPaths(data: Uint8Array): { path?: string; linkpath?: string } {
  const text = new TextDecoder().decode(data);
  const out: { path?: string; linkpath?: string } = {};
  let i = 0;
  while (i < text.length) {
    const sp = text.indexOf(" ", i);
    const len = Number(text.slice(i, sp));
    if (sp < 0 || !Number.isInteger(len) || len <= 0) throw new TarRejected("a bad pax header");
    const record = text.slice(sp + 1, i + len - 1);
    const eq = record.indexOf("=");
    const key = record.slice(0, eq);
    if (key === "path") out.path = record.slice(eq + 1);
    if (key === "linkpath") out.linkpath = record.slice(eq + 1);
    i += len;
  }
  return out;
}

export class TarGuard {
  #header = new Uint8Array(BLOCK);
  #have = 0;
  /** Bytes of the current member's data (with padding) still to pass. */
  #skip = 0;
  /** A pax/GNU header's data being collected, and for whom. */
  #meta: { type: string; data: Uint8Array; have: number; pad: number } | undefined;
  /** A name set by a pax or GNU long-name header for the next member. */
  #nextName: string | undefined;
  #ended = false;
  /** Members seen (for messages and tests). */
  members = 0;

  /** Check the next bytes of the stream; throws TarRejected on a member we refuse. */
  push(chunk: Uint8Array): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.#ended) return; // after the end-of-archive blocks: padding
      if (this.#meta) {
        const m = this.#meta;
        const n = Math.min(m.data.length - m.have, chunk.length - off);
        m.data.set(chunk.subarray(off, off + n), m.have);
        m.have += n;
        off += n;
        if (m.have === m.data.length) {
          this.#meta = undefined;
          this.#skip = m.pad;
          this.#takeMeta(m.type, m.data);
        }
        continue;
      }
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        this.#skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#have, chunk.length - off);
      this.#header.set(chunk.subarray(off, off + n), this.#have);
      this.#have += n;
      off += n;
      if (this.#have === BLOCK) {
        this.#have = 0;
        this.#takeHeader(this.#header);
      }
    }
  }

  #takeMeta(type: string, data: Uint8Array): void {
    if (type === "L") this.#nextName = cString(data);
    else if (type === "x") {
      const p = paxPaths(data);
      if (p.linkpath !== undefined) throw new TarRejected("a pax header names a link target");
      if (p.path !== undefined) this.#nextName = p.path;
    } // "g": global pax attributes; a path there would apply to every member.
    else if (type === "g" && paxPaths(data).path !== undefined) {
      throw new TarRejected("a global pax header sets a path");
    }
  }

  #takeHeader(h: Uint8Array): void {
    if (h.every((b) => b === 0)) {
      this.#ended = true;
      return;
    }
    // tar skips a header whose checksum is wrong and looks for the next one: a block we took
    // for a header would then be data to it (and the other way round). Never disagree.
    if (!checksumOk(h)) throw new TarRejected("a tar header with a bad checksum");
    const type = String.fromCharCode(h[156]!);
    const size = parseSize(h.subarray(124, 136));
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "x" || type === "g" || type === "L") {
      if (size > MAX_META) throw new TarRejected(`a ${type} header of ${size} bytes`);
      this.#meta = { type, data: new Uint8Array(size), have: 0, pad: padded - size };
      if (size === 0) {
        this.#meta = undefined;
        this.#takeMeta(type, new Uint8Array(0));
      }
      return;
    }
    const magicUstar = cString(h.subarray(257, 263)).startsWith("ustar");
    const prefix = magicUstar ? cString(h.subarray(345, 500)) : "";
    const name = cString(h.subarray(0, 100));
    const path = this.#nextName ?? (prefix ? `${prefix}/${name}` : name);
    this.#nextName = undefined;
    this.members++;
    if (type !== "0" && type !== "\0" && type !== "5" && type !== "7") {
      const what: Record<string, string> = {
        "1": "a hard link",
        "2": "a symbolic link",
        "3": "a character device",
        "4": "a block device",
        "6": "a FIFO",
        "K": "a long link name",
      };
      throw new TarRejected(
        `member ${JSON.stringify(path)} is ${what[type] ?? `of type ${JSON.stringify(type)}`}`,
      );
    }
    const problem = memberPathProblem(path.replace(/\/+$/, "") || path);
    if (problem) throw new TarRejected(`member ${problem}`);
    if (type === "5" && size !== 0) {
      throw new TarRejected(`directory ${JSON.stringify(path)} has data`);
    }
    this.#skip = padded;
  }
}
