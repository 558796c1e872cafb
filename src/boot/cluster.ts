/** EFFECT (reads only): facts about the cluster in PGDATA, from pg_control (read as postgres). */
import type { Layout } from "../config/layout.ts";
import type { PgTree } from "../fs/tree.ts";
import { OperatorError } from "../util/errors.ts";
import { controlTimeline, systemIdentifierOf } from "../wal/config.ts";

function control(data: PgTree, layout: Pick<Layout, "pgdata">): Uint8Array {
  const bytes = data.readBytes(`${layout.pgdata}/global/pg_control`);
  if (!bytes) throw new OperatorError(`${layout.pgdata}/global/pg_control is missing`);
  return bytes;
}

/** The system identifier (decimal). */
export function clusterSysid(data: PgTree, layout: Pick<Layout, "pgdata">): string {
  return systemIdentifierOf(control(data, layout));
}

/** The latest checkpoint's timeline. */
export function clusterCheckpointTimeline(data: PgTree, layout: Pick<Layout, "pgdata">): number {
  return controlTimeline(control(data, layout));
}

/** The latest checkpoint's location (pg_control's checkPoint, after the state and time). */
export function clusterCheckpointLsn(data: PgTree, layout: Pick<Layout, "pgdata">): bigint {
  const c = control(data, layout);
  return new DataView(c.buffer, c.byteOffset).getBigUint64(32, true);
}
