/**
 * PURE: the WAL sink's HTTP API, both sides (the sink serves it, the primary's boot reads it).
 *
 *   GET /v1/wal           the listing below (JSON)
 *   GET /v1/wal/<name>    a complete segment (16 MiB), or `<name>.partial`: its valid bytes
 *                         (whole records, checked as recovery would); header x-valid-bytes
 *
 * Both need `Authorization: Bearer <token>`. What a sink answers is untrusted input to the
 * primary: the listing is parsed strictly here, the bytes are checked by the gap fetch.
 */
import { walKind } from "./names.ts";

export interface SinkSegment {
  /** The segment's file name (24 hex digits; without `.partial`). */
  name: string;
  /** Valid bytes from the segment's start (a complete segment: all of it). */
  bytes: number;
  partial: boolean;
}

export interface SinkListing {
  /** The sink's name (its slot on the primary). */
  sink: string;
  /** Of the WAL it holds (decimal), or null when it holds none yet. */
  systemIdentifier: string | null;
  segments: SinkSegment[];
  /** Where its valid WAL ends (LSN text), or null. */
  end: string | null;
}

/** A listing from the wire, or what is wrong with it (one line). */
export function parseSinkListing(value: unknown, segmentBytes: number): SinkListing | string {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return "the listing is not a JSON object";
  }
  const v = value as Record<string, unknown>;
  const sysid = v["systemIdentifier"];
  if (sysid !== null && (typeof sysid !== "string" || !/^\d{1,20}$/.test(sysid))) {
    return "its systemIdentifier is not a decimal number";
  }
  if (!Array.isArray(v["segments"]) || v["segments"].length > 100_000) {
    return "its segments are not a list";
  }
  const segments: SinkSegment[] = [];
  for (const s of v["segments"] as unknown[]) {
    const o = s as Record<string, unknown>;
    const name = o?.["name"];
    const bytes = o?.["bytes"];
    if (
      typeof name !== "string" || walKind(name) !== "segment" || typeof bytes !== "number" ||
      !Number.isInteger(bytes) || bytes < 0 || bytes > segmentBytes ||
      typeof o["partial"] !== "boolean"
    ) {
      return `segment entry ${JSON.stringify(s).slice(0, 80)} is malformed`;
    }
    segments.push({ name, bytes, partial: o["partial"] });
  }
  const end = v["end"];
  if (end !== null && (typeof end !== "string" || !/^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i.test(end))) {
    return "its end is not an LSN";
  }
  return {
    sink: typeof v["sink"] === "string" ? v["sink"].slice(0, 63) : "?",
    systemIdentifier: sysid as string | null,
    segments,
    end: end as string | null,
  };
}
