/**
 * EFFECT: a replica's data directory before postgres starts (BEYOND_PG_TIER=replica).
 *
 *  - empty volume → clone from the primary (pg_basebackup into a staging directory, committed
 *    like a first boot; retried with backoff, a failed attempt is removed whole);
 *  - a volume that is not in standby mode (no standby.signal: it was a primary, or a promoted
 *    replica) → pg_rewind onto the primary's timeline first: a former primary never starts
 *    read-write while metadata says it is a replica;
 *  - an existing standby → the primary must be this cluster (system identifier), when it can
 *    be reached; an unreachable primary only delays streaming (reads are served meanwhile).
 *
 * Then standby.signal, every boot.
 */
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import type { BootContext } from "./boot.ts";
import { clusterCheckpointLsn, clusterCheckpointTimeline, clusterSysid } from "./cluster.ts";
import {
  cloneFrom,
  type CloneProgress,
  identifyUpstream,
  rewindFrom,
  upstreamHistory,
} from "./upstream.ts";
import { leftHistory, parseHistory } from "../wal/lineage.ts";

export const STANDBY_SIGNAL = "standby.signal";

export interface ReplicaBootHooks {
  stop?: AbortSignal;
  /** Progress and problems while waiting for the primary (status shows them). */
  report?: (r: { clone?: CloneProgress; problem?: string }) => void;
}

/** Retry `fn` with capped backoff until it succeeds or `stop` aborts (then throws). */
export async function untilDone<T>(
  what: string,
  fn: () => Promise<T>,
  h: ReplicaBootHooks,
): Promise<T> {
  for (let failures = 0;; failures++) {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof OperatorError && error.exitCode === 2) throw error;
      const delay = Math.min(1000 * 2 ** failures, 30_000);
      const problem = `${what}: ${errorMessage(error)}`;
      h.report?.({ problem });
      log.error(`${problem}; retrying in ${delay} ms`);
      if (!(await sleep(delay, h.stop))) {
        throw new OperatorError(`stopped while ${what}`, { cause: error });
      }
    }
  }
}

/** The clone step of a replica's first boot (firstBoot's `clone`). */
export function cloneInto(ctx: BootContext, h: ReplicaBootHooks) {
  const at = ctx.replication.upstream!;
  return async (staging: string): Promise<void> => {
    log.info(`replica: cloning from the primary ${at.host}:${at.port} (pg_basebackup)`);
    let last = 0;
    await untilDone(`cloning from ${at.host}:${at.port}`, async () => {
      ctx.trees.data.remove(staging); // a failed attempt leaves nothing behind
      await cloneFrom(ctx, at, staging, {
        ...(h.stop ? { signal: h.stop } : {}),
        progress: (p) => {
          h.report?.({ clone: p });
          if (p.percent >= last + 25) {
            last = p.percent;
            log.info(`replica: clone ${p.percent}% (${Math.round(p.doneKb / 1024)} MiB)`);
          }
        },
      });
    }, h);
    ctx.trees.data.writeAtomic(`${staging}/${STANDBY_SIGNAL}`, "", 0o600);
  };
}

/** An existing volume booting as a replica (see above). */
export async function prepareStandby(ctx: BootContext, h: ReplicaBootHooks): Promise<void> {
  const at = ctx.replication.upstream!;
  const { trees, layout } = ctx;
  const signal = `${layout.pgdata}/${STANDBY_SIGNAL}`;
  const local = clusterSysid(trees.data, layout);
  const standby = trees.data.exists(signal);
  let diverged = false;
  if (standby) {
    try {
      await checkSameCluster(ctx, at, local);
      diverged = await leftPrimaryHistory(ctx, at);
    } catch (error) {
      if (error instanceof OperatorError && error.exitCode === 2) throw error;
      log.warn(
        `replica: ${
          errorMessage(error)
        }; starting as a standby anyway (reads are served, streaming resumes when the primary answers)`,
      );
    }
  }
  if (!standby || diverged) {
    log.warn(
      diverged
        ? `replica: this standby's latest checkpoint is past the point where the primary ${at.host}:${at.port} forked off its timeline (it was not rewound after a failover): rewinding it with pg_rewind; its WAL past the fork is discarded`
        : `replica: this volume is not a standby (it was a primary, or was promoted) and BEYOND_PG_TIER=replica: rewinding it onto ${at.host}:${at.port} with pg_rewind; its WAL past the fork is discarded`,
    );
    await untilDone(`rewinding onto ${at.host}:${at.port}`, async () => {
      await checkSameCluster(ctx, at, local);
      const last = await rewindFrom(ctx, at);
      log.info(`replica: pg_rewind: ${last}`);
    }, h);
    trees.data.remove(`${layout.pgdata}/recovery.signal`, false);
  }
  trees.data.writeAtomic(signal, "", 0o600);
}

/**
 * A standby volume that went past the primary's fork point (leftHistory): postgres would refuse
 * to follow, every start. Any failure to tell (the primary unreachable) is "no": the standby
 * starts, and streaming says the rest.
 */
async function leftPrimaryHistory(
  ctx: BootContext,
  at: { host: string; port: number },
): Promise<boolean> {
  try {
    const { trees, layout } = ctx;
    const timeline = clusterCheckpointTimeline(trees.data, layout);
    const up = await identifyUpstream(ctx, at);
    if (up.timeline === timeline) return false;
    const history = up.timeline > timeline
      ? parseHistory(await upstreamHistory(ctx, at, up.timeline))
      : [];
    return leftHistory(clusterCheckpointLsn(trees.data, layout), timeline, up.timeline, history);
  } catch (error) {
    log.debug(`replica: history check skipped: ${errorMessage(error)}`);
    return false;
  }
}

/** Throws (exit 2) when the primary is another cluster; other failures are transient. */
export async function checkSameCluster(
  ctx: BootContext,
  at: { host: string; port: number },
  local: string,
): Promise<void> {
  const id = await identifyUpstream(ctx, at);
  if (id.sysid !== local) {
    throw new OperatorError(
      `Cannot start: BEYOND_PG_PRIMARY=${at.host}:${at.port} is another cluster (system identifier ${id.sysid}); this volume's is ${local}: point BEYOND_PG_PRIMARY at this cluster's primary, or boot the replica on an empty volume to clone it`,
      { exitCode: 2 },
    );
  }
}
