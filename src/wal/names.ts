/** PURE: WAL file names as postgres hands them to archive_command / restore_command (%f). */

export type WalKind = "segment" | "partial" | "history" | "backup";

/** initdb's WAL segment size (the only one beyond-pg makes). */
export const SEGMENT_BYTES = 16 << 20;

export function walKind(name: string): WalKind | undefined {
  if (/^[0-9A-F]{24}$/.test(name)) return "segment";
  if (/^[0-9A-F]{24}\.partial$/.test(name)) return "partial";
  if (/^[0-9A-F]{8}\.history$/.test(name)) return "history";
  if (/^[0-9A-F]{24}\.[0-9A-F]{8}\.backup$/.test(name)) return "backup";
  return undefined;
}

export interface SegmentId {
  timeline: number;
  /** Segment number across the whole WAL stream (log * segsPerLog + seg). */
  number: bigint;
}

/** 16 MiB segments: 256 per 4 GiB "log". */
export function segmentsPerLog(segmentBytes = 16 << 20): bigint {
  return 0x100000000n / BigInt(segmentBytes);
}

export function parseSegment(name: string, segmentBytes = 16 << 20): SegmentId | undefined {
  if (!/^[0-9A-F]{24}/.test(name)) return undefined;
  const timeline = parseInt(name.slice(0, 8), 16);
  const log = BigInt(parseInt(name.slice(8, 16), 16));
  const seg = BigInt(parseInt(name.slice(16, 24), 16));
  return { timeline, number: log * segmentsPerLog(segmentBytes) + seg };
}

export function segmentName(id: SegmentId, segmentBytes = 16 << 20): string {
  const per = segmentsPerLog(segmentBytes);
  const h = (n: bigint | number, w = 8) => n.toString(16).toUpperCase().padStart(w, "0");
  return `${h(id.timeline)}${h(id.number / per)}${h(id.number % per)}`;
}

/** The `count` segments after `name` on the same timeline. */
export function nextSegments(name: string, count: number, segmentBytes = 16 << 20): string[] {
  const id = parseSegment(name, segmentBytes);
  if (!id || walKind(name) !== "segment") return [];
  return Array.from(
    { length: count },
    (_, i) =>
      segmentName({ timeline: id.timeline, number: id.number + BigInt(i + 1) }, segmentBytes),
  );
}

/** "0/3000148" → bigint, and back. */
export function parseLsn(text: string): bigint | undefined {
  const m = text.trim().match(/^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/);
  return m ? (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`) : undefined;
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}

/** The segment (number) holding an LSN. */
export function segmentOfLsn(lsn: bigint, segmentBytes = 16 << 20): bigint {
  return lsn / BigInt(segmentBytes);
}

/**
 * The system identifier in a segment's first page header (XLogLongPageHeaderData:
 * the 24-byte standard header, then uint64 xlp_sysid). Undefined when the magic is absent.
 */
export function segmentSystemIdentifier(firstPage: Uint8Array): bigint | undefined {
  if (firstPage.length < 32) return undefined;
  const v = new DataView(firstPage.buffer, firstPage.byteOffset, firstPage.byteLength);
  const info = v.getUint16(2, true);
  const XLP_LONG_HEADER = 0x0002;
  if ((info & XLP_LONG_HEADER) === 0) return undefined;
  return v.getBigUint64(24, true);
}
