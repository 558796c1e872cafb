/**
 * PURE: give a cluster copied from a seed its own system identifier. pg_control starts with
 * `uint64 system_identifier` in every version we support and ends its data with a CRC-32C of
 * everything before it; the CRC's offset differs between versions, so it is found by search
 * (the one offset whose stored CRC matches) rather than hard-coded. Callers verify the result
 * with pg_controldata and then let pg_resetwal write WAL carrying the new identifier.
 */

import { crc32c } from "../util/crc32c.ts";

export { crc32c };

/** Offset of the CRC field in a pg_control image, or undefined when none verifies. */
export function findCrcOffset(control: Uint8Array): number | undefined {
  const view = new DataView(control.buffer, control.byteOffset, control.byteLength);
  // ControlFileData is a few hundred bytes; the 8 KiB file is zero-padded after it.
  for (let k = 16; k + 4 <= Math.min(control.length, 1024); k += 4) {
    if (view.getUint32(k, true) === crc32c(control.subarray(0, k))) return k;
  }
  return undefined;
}

export function readSystemIdentifier(control: Uint8Array): bigint {
  return new DataView(control.buffer, control.byteOffset).getBigUint64(0, true);
}

/** A copy of `control` with a new system identifier and a recomputed CRC. */
export function withSystemIdentifier(control: Uint8Array, sysid: bigint): Uint8Array {
  const offset = findCrcOffset(control);
  if (offset === undefined) {
    throw new Error("pg_control has no verifiable CRC; refusing to edit it");
  }
  const out = control.slice();
  const view = new DataView(out.buffer);
  view.setBigUint64(0, sysid, true);
  view.setUint32(offset, crc32c(out.subarray(0, offset)), true);
  return out;
}

/** Like PostgreSQL's: seconds in the high half, microseconds and randomness below. */
export function newSystemIdentifier(
  nowMs = Date.now(),
  random = crypto.getRandomValues(new Uint32Array(1))[0]!,
): bigint {
  const seconds = BigInt(Math.floor(nowMs / 1000));
  const micros = BigInt(Math.floor((nowMs % 1000) * 1000));
  return (seconds << 32n) | (micros << 12n) | BigInt(random & 0xfff);
}

/** pg_controldata's words for DBState (the same numbering in every version we support). */
const STATES = [
  "starting up",
  "shut down",
  "shut down in recovery",
  "shutting down",
  "in crash recovery",
  "in archive recovery",
  "in production",
];

/**
 * PURE: "Database cluster state" as pg_controldata prints it, from pg_control's `state` (the
 * uint32 after system_identifier, pg_control_version and catalog_version_no: offset 16), so a
 * host with another major's tools can read it.
 */
export function clusterStateOf(control: Uint8Array): string {
  const n = new DataView(control.buffer, control.byteOffset, control.byteLength).getUint32(
    16,
    true,
  );
  return STATES[n] ?? `unknown state ${n}`;
}
