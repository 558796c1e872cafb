/**
 * PURE: read WAL as PostgreSQL's xlogreader does, far enough to say where valid WAL ends:
 * page headers (magic of the major, page address, timeline, and on a segment's first page the
 * system identifier, segment and block size), record headers (length, the previous record's
 * position), continuation pages (XLP_FIRST_IS_CONTRECORD with the remaining length), and each
 * record's CRC-32C (over its data, then its header up to the CRC). A switch record skips to
 * the next segment. The first invalid thing is the end — as crash recovery would see it.
 *
 * Used for a volume's own end of WAL before the gap fetch (boot) and for how much of a WAL
 * sink's `.partial` segment is valid (the sink serves that much).
 */
import { CRC32C_INIT, crc32cFinish, crc32cUpdate } from "../util/crc32c.ts";

export const PAGE_BYTES = 8192;
const SHORT_HEADER = 24;
const LONG_HEADER = 40;
const RECORD_HEADER = 24;
const XLP_FIRST_IS_CONTRECORD = 0x0001;
const XLP_LONG_HEADER = 0x0002;
const RM_XLOG_ID = 0;
const XLOG_SWITCH = 0x40;

export interface WalFormat {
  /** XLOG_PAGE_MAGIC of the major (validate.ts WAL_MAGIC). */
  magic: number;
  segmentBytes: number;
}

/** WAL bytes by LSN: exactly `len` bytes at `lsn`, or undefined where there are none. */
export interface WalBytes {
  get(lsn: bigint, len: number): Uint8Array | undefined;
}

export interface PageHeader {
  magic: number;
  info: number;
  tli: number;
  pageaddr: bigint;
  remLen: number;
  sysid?: bigint;
  segSize?: number;
  blcksz?: number;
}

export function readPageHeader(b: Uint8Array): PageHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const h: PageHeader = {
    magic: v.getUint16(0, true),
    info: v.getUint16(2, true),
    tli: v.getUint32(4, true),
    pageaddr: v.getBigUint64(8, true),
    remLen: v.getUint32(16, true),
  };
  if (h.info & XLP_LONG_HEADER && b.length >= LONG_HEADER) {
    h.sysid = v.getBigUint64(24, true);
    h.segSize = v.getUint32(32, true);
    h.blcksz = v.getUint32(36, true);
  }
  return h;
}

export interface WalkOptions {
  format: WalFormat;
  /** Pages may carry this timeline or an older one (a new timeline's first segment). */
  timeline: number;
  /** Checked on each segment's first page when given. */
  sysid?: bigint;
  /** Stop at (or past) this LSN. */
  until?: bigint;
  /** Where the record before `start` began (checked against the first xl_prev). */
  prev?: bigint;
  /**
   * Check each record's CRC (default). Without: lengths, links and page headers only, ~10×
   * faster without a JIT, for a caller that compares the bytes another way.
   */
  crc?: boolean;
}

export type StopReason =
  | "end" /* zeros where the next record would be: the normal end of WAL */
  | "no-data" /* the bytes are not there (end of what we have) */
  | "bad-page"
  | "bad-record"
  | "bad-crc"
  | "limit";

export interface WalkResult {
  /** Where valid WAL ends: the next record would start here. */
  end: bigint;
  /** Start of the last valid record (undefined: none was read). */
  last: bigint | undefined;
  /**
   * Where the last record read ends when it was a switch record (the rest of its segment is
   * padding that recovery never reads).
   */
  switchEnd?: bigint;
  records: number;
  stop: StopReason;
  detail: string;
}

const maxAlign = (n: bigint) => (n + 7n) & ~7n;

class Reader {
  readonly #src: WalBytes;
  readonly #o: WalkOptions;
  #pageTli = 0;
  problem = "";

  constructor(src: WalBytes, o: WalkOptions) {
    this.#src = src;
    this.#o = o;
  }

  /** Size of the page header at page start `page`. */
  headerSize(page: bigint): number {
    return page % BigInt(this.#o.format.segmentBytes) === 0n ? LONG_HEADER : SHORT_HEADER;
  }

  /** Validate the page starting at `page`; its header, or undefined (problem set). */
  page(page: bigint): PageHeader | "no-data" | undefined {
    const size = this.headerSize(page);
    const b = this.#src.get(page, size);
    if (!b) return "no-data";
    const h = readPageHeader(b);
    const fmt = this.#o.format;
    if (h.magic !== fmt.magic) {
      this.problem = h.magic === 0
        ? "end"
        : `page ${hex(page)}: magic ${h.magic.toString(16)}, expected ${fmt.magic.toString(16)}`;
      return undefined;
    }
    if (h.pageaddr !== page) {
      this.problem = `page ${hex(page)}: its address says ${
        hex(h.pageaddr)
      } (an old, recycled page)`;
      return undefined;
    }
    if (h.tli > this.#o.timeline || h.tli < this.#pageTli) {
      this.problem = `page ${hex(page)}: timeline ${h.tli} out of sequence`;
      return undefined;
    }
    if (size === LONG_HEADER) {
      if (!(h.info & XLP_LONG_HEADER)) {
        this.problem = `page ${hex(page)}: a segment's first page without a long header`;
        return undefined;
      }
      if (this.#o.sysid !== undefined && h.sysid !== this.#o.sysid) {
        this.problem = `page ${hex(page)}: system identifier ${h.sysid}, expected ${this.#o.sysid}`;
        return undefined;
      }
      if (h.segSize !== fmt.segmentBytes || h.blcksz !== PAGE_BYTES) {
        this.problem = `page ${hex(page)}: segment or block size differs`;
        return undefined;
      }
    }
    this.#pageTli = h.tli;
    return h;
  }

  /**
   * `len` bytes of a record starting at `pos` (not a page start), across pages; `rem` is the
   * record's length still to come at `pos` (continuation pages must say so), or undefined while
   * it is not known yet (a record header split across pages: its length is in its first bytes,
   * and the whole record is read again with it). Returns the bytes and the position after
   * them, or a stop reason.
   */
  read(
    pos: bigint,
    len: number,
    rem: number | undefined,
  ): { bytes: Uint8Array; next: bigint } | StopReason {
    // Within one page (most records): the bytes as they are, no copy.
    const inFirst = Number(pos % BigInt(PAGE_BYTES));
    if (inFirst !== 0 && inFirst + len <= PAGE_BYTES) {
      const b = this.#src.get(pos, len);
      return b ? { bytes: b, next: pos + BigInt(len) } : "no-data";
    }
    const out = new Uint8Array(len);
    let got = 0;
    let p = pos;
    while (got < len) {
      const inPage = Number(p % BigInt(PAGE_BYTES));
      if (inPage === 0) {
        const h = this.page(p);
        if (h === "no-data") return "no-data";
        if (!h) return this.problem === "end" ? "end" : "bad-page";
        if (
          !(h.info & XLP_FIRST_IS_CONTRECORD) ||
          (rem === undefined ? h.remLen < len - got : h.remLen !== rem - got)
        ) {
          this.problem = `page ${hex(p)}: continuation says ${h.remLen} bytes, ${
            rem === undefined ? `at least ${len - got}` : rem - got
          } expected`;
          return "bad-record";
        }
        p += BigInt(this.headerSize(p));
        continue;
      }
      const take = Math.min(len - got, PAGE_BYTES - inPage);
      const b = this.#src.get(p, take);
      if (!b) return "no-data";
      out.set(b, got);
      got += take;
      p += BigInt(take);
    }
    return { bytes: out, next: p };
  }
}

function hex(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}

/**
 * The first record that starts in the segment at `segStart` (after the rest of a record
 * continued from the previous segment), or a reason it cannot be found.
 */
export function firstRecord(
  src: WalBytes,
  segStart: bigint,
  o: WalkOptions,
): { lsn: bigint } | { stop: StopReason; detail: string } {
  const r = new Reader(src, o);
  const h = r.page(segStart);
  if (h === "no-data") return { stop: "no-data", detail: `no bytes at ${hex(segStart)}` };
  if (!h) return { stop: r.problem === "end" ? "end" : "bad-page", detail: r.problem };
  let pos = segStart + BigInt(LONG_HEADER);
  if (h.info & XLP_FIRST_IS_CONTRECORD && h.remLen > 0) {
    // Skip the rest of the previous segment's last record (its bytes are checked by pages).
    const skipped = r.read(pos, h.remLen, h.remLen);
    if (typeof skipped === "string") return { stop: skipped, detail: r.problem };
    pos = maxAlign(skipped.next);
  }
  return { lsn: pos };
}

/** Walk records from `start` (a record's start) to the end of valid WAL. */
export function walk(src: WalBytes, start: bigint, o: WalkOptions): WalkResult {
  const r = new Reader(src, o);
  let pos = start;
  let last: bigint | undefined = o.prev;
  let records = 0;
  let switchEnd: bigint | undefined;
  const done = (stop: StopReason, detail = r.problem): WalkResult => ({
    end: pos,
    last,
    ...(switchEnd !== undefined ? { switchEnd } : {}),
    records,
    stop,
    detail,
  });
  const seg = BigInt(o.format.segmentBytes);
  for (;;) {
    if (o.until !== undefined && pos >= o.until) return done("limit", "");
    if (pos % BigInt(PAGE_BYTES) === 0n) {
      const h = r.page(pos);
      if (h === "no-data") return done("no-data", `no bytes at ${hex(pos)}`);
      if (!h) return done(r.problem === "end" ? "end" : "bad-page");
      if (h.info & XLP_FIRST_IS_CONTRECORD && h.remLen > 0) {
        return done("bad-record", `page ${hex(pos)} continues a record where one should start`);
      }
      pos += BigInt(r.headerSize(pos));
    }
    // The header first (it may be split across pages), then the whole record.
    const head = r.read(pos, RECORD_HEADER, undefined);
    if (typeof head === "string") return done(head);
    const hv = new DataView(head.bytes.buffer, head.bytes.byteOffset, head.bytes.byteLength);
    const total = hv.getUint32(0, true);
    if (total === 0) return done("end", `zeros at ${hex(pos)}`);
    if (total < RECORD_HEADER || total > 1 << 30) {
      return done("bad-record", `record at ${hex(pos)}: length ${total}`);
    }
    const prev = hv.getBigUint64(8, true);
    if (last !== undefined && prev !== last) {
      return done(
        "bad-record",
        `record at ${hex(pos)}: xl_prev ${hex(prev)}, expected ${hex(last)}`,
      );
    }
    const rec = r.read(pos, total, total);
    if (typeof rec === "string") return done(rec);
    const b = rec.bytes;
    if (o.crc !== false) {
      const want = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(20, true);
      const crc = crc32cFinish(
        crc32cUpdate(crc32cUpdate(CRC32C_INIT, b.subarray(RECORD_HEADER)), b.subarray(0, 20)),
      );
      if (crc !== want) return done("bad-crc", `record at ${hex(pos)}: CRC mismatch`);
    }
    last = pos;
    records++;
    const info = b[16]!;
    const rmid = b[17]!;
    const isSwitch = rmid === RM_XLOG_ID && (info & 0xf0) === XLOG_SWITCH;
    switchEnd = isSwitch ? rec.next : undefined;
    pos = isSwitch ? ((rec.next + seg - 1n) / seg) * seg : maxAlign(rec.next);
  }
}

/** How the WAL in one segment file (number `segNo`) runs, from its first record on. */
function walkSegment(
  file: Uint8Array,
  segNo: bigint,
  o: Omit<WalkOptions, "until" | "prev">,
): WalkResult | undefined {
  const src = segmentBytes(new Map([[segNo, file]]), o.format.segmentBytes);
  const first = firstRecord(src, segNo * BigInt(o.format.segmentBytes), o);
  return "lsn" in first ? walk(src, first.lsn, o) : undefined;
}

/**
 * Offset in the segment file `file` (number `segNo`) just past its switch record, when its
 * records run from its start to a switch record (pg_switch_wal, archive_timeout) that skips the
 * rest of it; undefined otherwise. What follows that record is padding recovery never reads: the
 * primary wrote page headers there, a standby that lost its primary while receiving them has
 * zeros or a recycled file's old bytes.
 */
export function switchEndIn(
  file: Uint8Array,
  segNo: bigint,
  o: Omit<WalkOptions, "until" | "prev">,
): number | undefined {
  const start = segNo * BigInt(o.format.segmentBytes);
  const r = walkSegment(file, segNo, o);
  if (r?.switchEnd === undefined || r.end !== start + BigInt(o.format.segmentBytes)) {
    return undefined;
  }
  return Number(r.switchEnd - start);
}

/**
 * Does the WAL in segment file `file` run to the segment's end (its last record ends there, or
 * a switch record skips the rest)? Not when it stops before: zeros (never received), an old
 * recycled page, a record that continues into the next segment.
 */
export function runsToSegmentEnd(
  file: Uint8Array,
  segNo: bigint,
  o: Omit<WalkOptions, "until" | "prev">,
): boolean {
  const seg = BigInt(o.format.segmentBytes);
  return walkSegment(file, segNo, o)?.end === (segNo + 1n) * seg;
}

/** WalBytes over whole segment files of one timeline, by segment number. */
export function segmentBytes(
  segments: ReadonlyMap<bigint, Uint8Array>,
  segmentSize: number,
): WalBytes {
  const size = BigInt(segmentSize);
  return {
    get(lsn, len) {
      const first = segments.get(lsn / size);
      const off0 = Number(lsn % size);
      if (first && off0 + len <= first.length) return first.subarray(off0, off0 + len);
      const out = new Uint8Array(len);
      let got = 0;
      while (got < len) {
        const at = lsn + BigInt(got);
        const seg = segments.get(at / size);
        const off = Number(at % size);
        if (!seg || off >= seg.length) return undefined;
        const take = Math.min(len - got, seg.length - off);
        out.set(seg.subarray(off, off + take), got);
        got += take;
      }
      return out;
    },
  };
}
