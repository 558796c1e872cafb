/**
 * EFFECT: the WAL a sink holds — what pg_receivewal wrote into its directory: complete
 * segments and the current `.partial` (pre-allocated to 16 MiB, so its size says nothing).
 * How much of the `.partial` is valid is found by reading its records as recovery would
 * (wal/reader.ts), incrementally: each listing reads only what was added since the last one.
 * Retention: complete segments beyond the size budget go, oldest first.
 */
import type { RootTree } from "../fs/tree.ts";
import { formatLsn, parseSegment, SEGMENT_BYTES, walKind } from "../wal/names.ts";
import { firstRecord, PAGE_BYTES, readPageHeader, type WalBytes, walk } from "../wal/reader.ts";
import type { SinkListing, SinkSegment } from "../wal/sink_api.ts";
import { WAL_MAGIC } from "../wal/validate.ts";
import { log } from "../util/log.ts";

const KNOWN_MAGIC = new Set(Object.values(WAL_MAGIC));

/** How much of a partial segment past its known end a walk reads at a time. */
const PARTIAL_READ_BYTES = 1 << 20;

interface PartialState {
  name: string;
  /** Valid WAL ends here (an LSN), and the last record began at `last`. */
  end: bigint;
  last: bigint | undefined;
  sysid: bigint | undefined;
  magic: number;
}

export class SinkStore {
  readonly #tree: RootTree;
  readonly #dir: string;
  readonly #name: string;
  #partial: PartialState | undefined;
  #sysid: string | null = null;
  /** The partial's walk reads into this (see #readSized). */
  #scratch = new Uint8Array(0);

  constructor(tree: RootTree, dir: string, name: string) {
    this.#tree = tree;
    this.#dir = dir;
    this.#name = name;
  }

  /** Complete segments and the partial, oldest first (names only, checked). */
  files(): { name: string; partial: boolean }[] {
    return this.#tree.list(this.#dir)
      .filter((e) => e.isFile)
      .map((e) => e.name)
      .filter((n) => walKind(n) === "segment" || walKind(n) === "partial")
      .map((n) => ({ name: n.replace(/\.partial$/, ""), partial: n.endsWith(".partial") }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Bytes of a file from `offset` to its end, or at most `limit` of them (a short read: what is
   * there now); `size` is the file's. Read into `into` when it is given and large enough (the
   * partial's walk reuses one buffer: a fresh one each second costs a page fault per 4 KiB).
   */
  #readSized(
    file: string,
    offset: number,
    limit = Infinity,
    into?: Uint8Array,
  ): { bytes: Uint8Array; size: number } {
    const f = this.#tree.open(`${this.#dir}/${file}`, { read: true });
    try {
      const size = f.statSync().size;
      const want = Math.max(0, Math.min(size - offset, limit));
      const out = into && into.length >= want ? into.subarray(0, want) : new Uint8Array(want);
      f.seekSync(offset, Deno.SeekMode.Start);
      let got = 0;
      while (got < out.length) {
        const n = f.readSync(out.subarray(got));
        if (n === null || n === 0) break;
        got += n;
      }
      return { bytes: out.subarray(0, got), size };
    } finally {
      f.close();
    }
  }

  #read(file: string, offset: number, limit?: number): Uint8Array {
    return this.#readSized(file, offset, limit).bytes;
  }

  /**
   * How much of the partial segment `name` is valid (whole records). It reads from the page
   * holding the known end (everything before it is valid), 1 MiB at a time: pg_receivewal's
   * partial is the whole 16 MiB, zero-filled past what arrived, and a busy second brings
   * about that much. A walk that runs out of bytes goes on from where it stopped; only a
   * record longer than what was read makes the next read larger.
   */
  #partialEnd(name: string): PartialState | undefined {
    const id = parseSegment(name)!;
    const segStart = id.number * BigInt(SEGMENT_BYTES);
    let st = this.#partial?.name === name ? this.#partial : undefined;
    let limit = PARTIAL_READ_BYTES;
    let bytes: Uint8Array = new Uint8Array(0);
    let base = segStart;
    const src: WalBytes = {
      get(lsn, len) {
        const off = Number(lsn - base);
        if (off < 0 || off + len > bytes.length) return undefined;
        return bytes.subarray(off, off + len);
      },
    };
    for (;;) {
      const from = st ? Number((st.end - segStart) / BigInt(PAGE_BYTES)) * PAGE_BYTES : 0;
      if (this.#scratch.length < Math.min(limit, SEGMENT_BYTES)) {
        this.#scratch = new Uint8Array(Math.min(limit, SEGMENT_BYTES));
      }
      const read = this.#readSized(`${name}.partial`, from, limit, this.#scratch);
      bytes = read.bytes;
      base = segStart + BigInt(from);
      const more = from + bytes.length < read.size;
      if (!st) {
        if (bytes.length < 40) return undefined;
        const h = readPageHeader(bytes.subarray(0, 40));
        if (!KNOWN_MAGIC.has(h.magic)) return undefined;
        const format = { magic: h.magic, segmentBytes: SEGMENT_BYTES };
        const f = firstRecord(src, segStart, { format, timeline: id.timeline });
        if ("stop" in f && f.stop === "no-data" && more) {
          limit *= 4; // the rest of a long record continued from the previous segment
          continue;
        }
        const first = { name, last: undefined, sysid: h.sysid, magic: h.magic };
        if (!("lsn" in f)) return { ...first, end: segStart };
        st = { ...first, end: f.lsn };
      }
      const r = walk(src, st.end, {
        format: { magic: st.magic, segmentBytes: SEGMENT_BYTES },
        timeline: id.timeline,
        ...(st.sysid !== undefined ? { sysid: st.sysid } : {}),
        ...(st.last !== undefined ? { prev: st.last } : {}),
      });
      const moved = r.end !== st.end;
      st = { ...st, end: r.end, last: r.last ?? st.last };
      if (r.stop !== "no-data" || !more) break;
      if (!moved) limit *= 4; // one record longer than what was read
    }
    this.#partial = st;
    return st;
  }

  listing(): SinkListing {
    const segments: SinkSegment[] = [];
    let end: bigint | undefined;
    for (const f of this.files()) {
      const id = parseSegment(f.name)!;
      const segStart = id.number * BigInt(SEGMENT_BYTES);
      if (!f.partial) {
        const size = this.#tree.stat(`${this.#dir}/${f.name}`)?.size ?? 0;
        if (size !== SEGMENT_BYTES) continue;
        if (this.#sysid === null) {
          const h = readPageHeader(this.#read(f.name, 0, 40));
          if (h.sysid !== undefined) this.#sysid = h.sysid.toString();
        }
        segments.push({ name: f.name, bytes: SEGMENT_BYTES, partial: false });
        end = segStart + BigInt(SEGMENT_BYTES);
        continue;
      }
      const st = this.#partialEnd(f.name);
      if (!st) continue;
      if (this.#sysid === null && st.sysid !== undefined) this.#sysid = st.sysid.toString();
      segments.push({ name: f.name, bytes: Number(st.end - segStart), partial: true });
      end = st.end;
    }
    return {
      sink: this.#name,
      systemIdentifier: this.#sysid,
      segments,
      end: end === undefined ? null : formatLsn(end),
    };
  }

  /**
   * A segment to serve, open, and how many of its bytes to send: a complete one whole, a
   * partial up to its valid end. The server streams them (a 16 MiB read on the event loop
   * before the first byte would hold up every other request).
   */
  openToServe(name: string): { file: Deno.FsFile; length: number } | undefined {
    const partial = name.endsWith(".partial");
    const base = name.replace(/\.partial$/, "");
    if (walKind(base) !== "segment") return undefined;
    const entry = this.files().find((f) => f.name === base && f.partial === partial);
    if (!entry) return undefined;
    let length = SEGMENT_BYTES;
    if (partial) {
      const st = this.#partialEnd(base);
      const segStart = parseSegment(base)!.number * BigInt(SEGMENT_BYTES);
      length = st ? Number(st.end - segStart) : 0;
    }
    const file = this.#tree.open(`${this.#dir}/${name}`, { read: true });
    if (!partial) {
      try {
        length = Math.min(length, file.statSync().size);
      } catch (error) {
        file.close();
        throw error;
      }
    }
    return { file, length };
  }

  /**
   * A `.partial` that is neither empty nor a whole segment is what pg_receivewal leaves when
   * padding a new file failed (a full disk): zeros only, no WAL. It refuses to start on such a
   * file ("has N bytes, should be 0 or 16777216"), so the sink would stay down after the space
   * is freed; remove it. One with any non-zero byte is kept (and reported by pg_receivewal).
   */
  dropTornPartials(): string[] {
    const dropped: string[] = [];
    for (const f of this.files().filter((x) => x.partial)) {
      const path = `${this.#dir}/${f.name}.partial`;
      const size = this.#tree.stat(path)?.size ?? 0;
      if (size === 0 || size === SEGMENT_BYTES) continue;
      const bytes = this.#read(`${f.name}.partial`, 0);
      if (!allZero(bytes)) {
        log.warn(
          `wal-sink: ${f.name}.partial has ${size} bytes with WAL in them; move it away if pg_receivewal refuses it`,
        );
        continue;
      }
      this.#tree.remove(path, false);
      if (this.#partial?.name === f.name) this.#partial = undefined;
      dropped.push(`${f.name}.partial`);
      log.warn(
        `wal-sink: removed ${f.name}.partial (${size} bytes of zeros: a new segment that could not be padded, e.g. on a full disk)`,
      );
    }
    return dropped;
  }

  /** Remove complete segments beyond `keepMb`, oldest first; the newest two always stay. */
  prune(keepMb: number): string[] {
    const complete = this.files().filter((f) => !f.partial);
    const budget = Math.floor((keepMb * 2 ** 20) / SEGMENT_BYTES);
    const drop = complete.slice(0, Math.max(0, complete.length - Math.max(budget, 2)));
    for (const f of drop) this.#tree.remove(`${this.#dir}/${f.name}`, false);
    if (drop.length) {
      log.info(`wal-sink: removed ${drop.length} old segment(s), ${drop[0]!.name} first`);
    }
    return drop.map((f) => f.name);
  }
}

function allZero(b: Uint8Array): boolean {
  const whole = b.byteOffset % 8 === 0 ? Math.floor(b.length / 8) : 0;
  const w = new BigUint64Array(b.buffer, b.byteOffset, whole);
  for (let i = 0; i < w.length; i++) if (w[i] !== 0n) return false;
  for (let i = whole * 8; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}
