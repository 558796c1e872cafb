/**
 * PURE: what a handoff reads from pg_control once postgres has stopped. The fields at the head
 * of ControlFileData have kept their places in every version we support (15–18):
 * system_identifier (u64, 0), pg_control_version (u32, 8), catalog_version_no (u32, 12), state
 * (enum DBState, u32, 16), time (i64, 24), checkPoint (XLogRecPtr, 32), then checkPointCopy
 * whose first field is redo (XLogRecPtr, 40) and second ThisTimeLineID (u32, 48).
 */
import { clusterStateOf } from "../boot/pg_control.ts";

export interface ControlCheckpoint {
  state: string;
  /** The latest checkpoint record's LSN. */
  checkpoint: bigint;
  /** Where replay would start: equal to `checkpoint` after a clean shutdown (nothing to replay). */
  redo: bigint;
  timeline: number;
}

export function readControlCheckpoint(control: Uint8Array): ControlCheckpoint {
  if (control.length < 56) throw new Error(`pg_control is ${control.length} bytes: too short`);
  const v = new DataView(control.buffer, control.byteOffset, control.byteLength);
  return {
    state: clusterStateOf(control),
    checkpoint: v.getBigUint64(32, true),
    redo: v.getBigUint64(40, true),
    timeline: v.getUint32(48, true),
  };
}
