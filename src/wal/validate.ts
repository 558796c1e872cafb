/**
 * PURE: is this file what its name says? Everything `archive` stores comes from a directory
 * the postgres uid can write, so the bytes are checked before they are uploaded: a segment by
 * its long page header (magic of this major, timeline and page address matching the name, the
 * cluster's system identifier, segment and block size), a timeline history file by parsing it,
 * a backup history file by its first line. A file that fails is refused with the reason.
 */
import { parseSegment, SEGMENT_BYTES, walKind } from "./names.ts";

export { SEGMENT_BYTES };

/** XLOG_PAGE_MAGIC (src/include/access/xlog_internal.h) per major version. */
export const WAL_MAGIC: Record<number, number> = {
  13: 0xd106,
  14: 0xd10d,
  15: 0xd110,
  16: 0xd113,
  17: 0xd116,
  18: 0xd118,
};

const XLP_LONG_HEADER = 0x0002;
/** A history or backup file is a few lines; anything larger is not one. */
export const MAX_TEXT_FILE = 1 << 20;

export interface WalExpect {
  major: number;
  /** Decimal system identifier of the cluster. */
  sysid: string;
  segmentBytes?: number;
}

/** The largest a file of this name can legitimately be. */
export function maxWalFileBytes(name: string, segmentBytes = SEGMENT_BYTES): number {
  const kind = walKind(name);
  return kind === "segment" || kind === "partial" ? segmentBytes : MAX_TEXT_FILE;
}

/** Why `data` is not the WAL file `name` of this cluster, or undefined when it is. */
export function walFileProblem(name: string, data: Uint8Array, e: WalExpect): string | undefined {
  const kind = walKind(name);
  if (!kind) return `${JSON.stringify(name)} is not a WAL file name`;
  if (kind === "history") return historyProblem(name, data);
  if (kind === "backup") return backupFileProblem(data);
  return segmentProblem(name, { head: data, size: data.length, expect: e });
}

/** Bytes of a segment's first page that segmentProblem looks at (its long header). */
export const SEGMENT_HEAD_BYTES = 40;

/**
 * Why a segment whose first bytes are `head` (at least SEGMENT_HEAD_BYTES) and whose file is
 * `size` bytes is not the segment `name` of this cluster, or undefined when it is.
 */
export function segmentProblem(
  name: string,
  o: { head: Uint8Array; size: number; expect: WalExpect },
): string | undefined {
  const { head, size, expect: e } = o;
  const segmentBytes = e.segmentBytes ?? SEGMENT_BYTES;
  if (size !== segmentBytes) {
    return `a WAL segment is ${segmentBytes} bytes, this one is ${size}`;
  }
  if (head.length < SEGMENT_HEAD_BYTES) return "its first page is cut short";
  const v = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = v.getUint16(0, true);
  const want = WAL_MAGIC[e.major];
  if (
    want !== undefined ? magic !== want : (magic & 0xff00) !== 0xd000 && (magic & 0xff00) !== 0xd100
  ) {
    return `page magic 0x${magic.toString(16)} is not PostgreSQL ${e.major}'s WAL`;
  }
  if ((v.getUint16(2, true) & XLP_LONG_HEADER) === 0) return "the first page has no long header";
  const id = parseSegment(name, segmentBytes)!;
  // The first segment of a new timeline starts as a copy of its parent's: its first page may
  // carry an older timeline, never a newer one.
  const tli = v.getUint32(4, true);
  if (tli < 1 || tli > id.timeline) {
    return `page header timeline ${tli}, the name says ${id.timeline}`;
  }
  const pageAddr = v.getBigUint64(8, true);
  if (pageAddr !== id.number * BigInt(segmentBytes)) {
    return `page address ${pageAddr.toString(16)} does not match the name`;
  }
  const sysid = v.getBigUint64(24, true).toString();
  if (sysid !== e.sysid) {
    return `it belongs to another cluster (system identifier ${sysid}, this one is ${e.sysid})`;
  }
  if (v.getUint32(32, true) !== segmentBytes) return "its segment size is not this cluster's";
  if (v.getUint32(36, true) !== 8192) return "its block size is not 8192";
  return undefined;
}

/**
 * A timeline history file: lines "<parent tli>\t<switch LSN>\t<reason>", comments (#) and
 * blank lines; parent timelines ascending and below the file's own.
 */
function historyProblem(name: string, data: Uint8Array): string | undefined {
  if (data.length > MAX_TEXT_FILE) return "a history file this large is not one";
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(data);
  } catch {
    return "a history file is text; this is not";
  }
  const own = parseInt(name.slice(0, 8), 16);
  let last = 0;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})(\s.*)?$/);
    if (!m) return `line ${JSON.stringify(line.slice(0, 40))} is not "timeline<TAB>LSN<TAB>reason"`;
    const tli = Number(m[1]);
    if (tli <= last || tli >= own) {
      return `timeline ${tli} is out of order in timeline ${own}'s history`;
    }
    last = tli;
  }
  if (own > 1 && last === 0) return "it names no parent timeline";
  return undefined;
}

/** A backup history file (<segment>.<offset>.backup) starts with its START WAL LOCATION. */
function backupFileProblem(data: Uint8Array): string | undefined {
  if (data.length > MAX_TEXT_FILE) return "a backup history file this large is not one";
  const head = new TextDecoder().decode(data.subarray(0, 200));
  return /^START WAL LOCATION: [0-9A-F]+\/[0-9A-F]+ \(file [0-9A-F]{24}\)/.test(head)
    ? undefined
    : "it does not start with START WAL LOCATION";
}
