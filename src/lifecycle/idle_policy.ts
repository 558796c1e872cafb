/**
 * PURE: may an idle database stop now (BEYOND_PG_IDLE_SHUTDOWN), and if not, why it stays up.
 * Idle means: no client session on 5432 (PgBouncer) or 5433 (direct), no replica, WAL sink or
 * base backup attached (walsenders), nothing waiting to be archived, not in recovery (a
 * restore, a replica), no handoff under way — continuously for the configured time. Anything
 * that keeps it up restarts the count.
 */

export interface IdleFacts {
  /** undefined: the facts could not be read (postgres restarting...): never idle then. */
  unknown?: string;
  /** Client sessions through PgBouncer, ours excluded. */
  clients: number;
  /** Direct sessions on 5433: ours and PgBouncer's server connections excluded. */
  direct: number;
  /** Walsenders running a base backup. */
  backups: number;
  /** Other walsenders: replicas, WAL sinks, pg_receivewal. */
  senders: number;
  /** WAL files waiting to be archived. */
  archiveBacklog: number;
  inRecovery: boolean;
  /** A generation handoff is under way. */
  handoff: boolean;
}

export interface IdleState {
  /** When something last kept the database busy (ms; the start counts). */
  lastActivityMs: number;
  /** When a client session was last seen (ms; undefined: none since start). */
  lastClientMs: number | undefined;
}

export interface IdleDecision {
  state: IdleState;
  stop: boolean;
  idleSeconds: number;
  /** Why it stays up (or, when `stop`, why it stops). */
  reason: string;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The first reason the database is busy now, or undefined when it is idle. */
export function busyReason(f: IdleFacts): string | undefined {
  if (f.unknown !== undefined) return `activity cannot be read: ${f.unknown}`;
  if (f.handoff) return "a generation handoff is under way";
  if (f.clients > 0) return `${plural(f.clients, "client session")} on the pooled port`;
  if (f.direct > 0) return `${plural(f.direct, "client session")} on the direct port`;
  if (f.backups > 0) return "a base backup is running";
  if (f.senders > 0) {
    return `${plural(f.senders, "replica or WAL sink", "replicas or WAL sinks")} attached`;
  }
  if (f.inRecovery) return "in recovery (a restore or a replica)";
  if (f.archiveBacklog > 0) {
    return `${plural(f.archiveBacklog, "WAL file")} waiting to be archived`;
  }
  return undefined;
}

export function decideIdle(
  afterS: number | undefined,
  state: IdleState,
  facts: IdleFacts,
  nowMs: number,
): IdleDecision {
  const busy = busyReason(facts);
  const clientSeen = facts.unknown === undefined && facts.clients + facts.direct > 0;
  const next: IdleState = {
    lastActivityMs: busy !== undefined ? nowMs : state.lastActivityMs,
    lastClientMs: clientSeen ? nowMs : state.lastClientMs,
  };
  const idleSeconds = Math.max(0, Math.floor((nowMs - next.lastActivityMs) / 1000));
  if (afterS === undefined) {
    return { state: next, stop: false, idleSeconds, reason: "idle shutdown is off" };
  }
  if (busy !== undefined) return { state: next, stop: false, idleSeconds, reason: busy };
  if (nowMs - next.lastActivityMs >= afterS * 1000) {
    return { state: next, stop: true, idleSeconds, reason: `idle for ${idleSeconds} s` };
  }
  return {
    state: next,
    stop: false,
    idleSeconds,
    reason: `idle for ${idleSeconds} s of ${afterS} s`,
  };
}

/** How often to look: a tenth of the idle time, between 1 and 5 s. */
export function sampleEveryMs(afterS: number): number {
  return Math.min(5000, Math.max(1000, Math.floor(afterS * 100)));
}
