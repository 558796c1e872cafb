/**
 * What replication looks like now, from postgres's own views: on a primary, each standby and
 * sink (sent, write, flush, replay LSN; lag in bytes and seconds; sync state) and whether the
 * synchronous quorum is met (when it is not, commits wait: status, /readyz and a metric say so
 * with one line); on a replica, what it received and replayed and from whom. A monitor takes
 * a snapshot every 2 s for status, /readyz and metrics; `GET /v1/pg/replication/lag` takes a
 * fresh one.
 */
import type { Admin } from "../supervise/admin.ts";
import type { Row } from "../pg/client.ts";
import type { ReplicationNow } from "../boot/replication.ts";
import { formatSyncSpec } from "../settings/sync_spec.ts";
import { type Family, gauge } from "../metrics/prom.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export interface StandbyState {
  name: string;
  client: string;
  state: string;
  syncState: string;
  sentLsn: string | null;
  writeLsn: string | null;
  flushLsn: string | null;
  replayLsn: string | null;
  lagBytes: { sent: number; write: number; flush: number; replay: number };
  lagSeconds: { write: number | null; flush: number | null; replay: number | null };
}

export interface SyncState {
  standbyNames: string;
  level: string;
  /** Named standbys streaming now. */
  connected: string[];
  /** The quorum is met: a commit needs no one who is missing. */
  met: boolean;
  /** Backends waiting for a synchronous standby now. */
  waitingCommits: number;
  /** One line when commits wait (or would). */
  problem?: string;
}

export interface ReplicationSnapshot {
  role: "primary" | "replica";
  inRecovery: boolean;
  timeline: number;
  /** Primary: pg_current_wal_lsn(); replica: the last replayed. */
  lsn: string | null;
  at: string;
  standbys?: StandbyState[];
  slots?: { name: string; active: boolean; restartLsn: string | null; walStatus: string | null }[];
  sync?: SyncState;
  receiver?: {
    status: string;
    primary: string | null;
    receivedLsn: string | null;
    replayLsn: string | null;
    /** Received but not replayed yet. */
    replayLagBytes: number;
    lastReplayAt: string | null;
    slot: string | null;
  };
}

const n = (v: string | null | undefined) => (v === null || v === undefined ? 0 : Number(v));
const nn = (v: string | null | undefined) => (v === null || v === undefined ? null : Number(v));

/** PURE: the quorum from the configured spec and who is streaming. */
export function syncStateOf(
  r: Pick<ReplicationNow, "sync" | "level">,
  streaming: readonly string[],
  waitingCommits: number,
): SyncState | undefined {
  const spec = r.sync;
  if (spec.names.length === 0 || spec.k === 0) return undefined;
  const connected = spec.names.filter((x) => streaming.includes(x));
  const met = connected.length >= spec.k;
  const text = formatSyncSpec(spec);
  return {
    standbyNames: text,
    level: r.level,
    connected,
    met,
    waitingCommits,
    ...(met ? {} : {
      problem: `commits wait: ${connected.length} of ${text} connected (${
        spec.names.filter((x) => !connected.includes(x)).join(", ")
      } missing); bring a standby back, or degrade on purpose with set-sync-standbys`,
    }),
  };
}

export async function takeSnapshot(
  admin: Admin,
  now: ReplicationNow,
): Promise<ReplicationSnapshot> {
  const [base] = await admin.query(`SELECT pg_is_in_recovery() AS rec,
      CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn()
      END::text AS lsn,
      now()::text AS at`);
  const inRecovery = base?.["rec"] === "t";
  if (inRecovery) {
    const [w] = await admin.query(`SELECT
        coalesce((SELECT status FROM pg_stat_wal_receiver), 'stopped') AS status,
        (SELECT sender_host || ':' || sender_port FROM pg_stat_wal_receiver) AS primary,
        (SELECT received_tli FROM pg_stat_wal_receiver) AS tli,
        (SELECT slot_name FROM pg_stat_wal_receiver) AS slot,
        pg_last_wal_receive_lsn()::text AS received,
        pg_last_wal_replay_lsn()::text AS replayed,
        coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0)
          AS replay_lag,
        pg_last_xact_replay_timestamp()::text AS last_replay,
        (SELECT timeline_id FROM pg_control_checkpoint()) AS cp_tli`);
    return {
      role: "replica",
      inRecovery,
      timeline: n(w?.["tli"] ?? w?.["cp_tli"]),
      lsn: base?.["lsn"] ?? null,
      at: base?.["at"] ?? "",
      receiver: {
        status: w?.["status"] ?? "stopped",
        primary: w?.["primary"] ?? null,
        receivedLsn: w?.["received"] ?? null,
        replayLsn: w?.["replayed"] ?? null,
        replayLagBytes: n(w?.["replay_lag"]),
        lastReplayAt: w?.["last_replay"] ?? null,
        slot: w?.["slot"] ?? null,
      },
    };
  }
  const [rows, slots, waiting, tli] = await Promise.all([
    admin.query(`SELECT application_name AS name, coalesce(client_addr::text, 'local') AS client,
        state, sync_state, sent_lsn::text AS sent, write_lsn::text AS write,
        flush_lsn::text AS flush, replay_lsn::text AS replay,
        pg_wal_lsn_diff(pg_current_wal_lsn(), sent_lsn) AS lag_sent,
        pg_wal_lsn_diff(pg_current_wal_lsn(), write_lsn) AS lag_write,
        pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) AS lag_flush,
        pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lag_replay,
        extract(epoch FROM write_lag) AS s_write, extract(epoch FROM flush_lag) AS s_flush,
        extract(epoch FROM replay_lag) AS s_replay
      FROM pg_stat_replication ORDER BY 1`),
    admin.query(`SELECT slot_name, active, restart_lsn::text AS restart, wal_status
      FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY 1`),
    admin.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'`),
    admin.query(`SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
      AS tli`),
  ]);
  const standbys = rows.map((r: Row): StandbyState => ({
    name: r["name"] ?? "",
    client: r["client"] ?? "",
    state: r["state"] ?? "",
    syncState: r["sync_state"] ?? "",
    sentLsn: r["sent"] ?? null,
    writeLsn: r["write"] ?? null,
    flushLsn: r["flush"] ?? null,
    replayLsn: r["replay"] ?? null,
    lagBytes: {
      sent: n(r["lag_sent"]),
      write: n(r["lag_write"]),
      flush: n(r["lag_flush"]),
      replay: n(r["lag_replay"]),
    },
    lagSeconds: { write: nn(r["s_write"]), flush: nn(r["s_flush"]), replay: nn(r["s_replay"]) },
  }));
  const streaming = standbys.filter((s) => s.state === "streaming").map((s) => s.name);
  const sync = syncStateOf(now, streaming, n(waiting[0]?.["n"]));
  return {
    role: "primary",
    inRecovery,
    timeline: n(tli[0]?.["tli"]),
    lsn: base?.["lsn"] ?? null,
    at: base?.["at"] ?? "",
    standbys,
    slots: slots.map((s) => ({
      name: s["slot_name"] ?? "",
      active: s["active"] === "t",
      restartLsn: s["restart"] ?? null,
      walStatus: s["wal_status"] ?? null,
    })),
    ...(sync ? { sync } : {}),
  };
}

/** PURE: Prometheus families for a snapshot. */
export function replicationFamilies(s: ReplicationSnapshot | undefined): Family[] {
  if (!s) return [];
  const out: Family[] = [
    gauge("beyond_pg_replication_role", "This node's replication role (1 for the current one).", [
      { labels: { role: "primary" }, value: s.role === "primary" ? 1 : 0 },
      { labels: { role: "replica" }, value: s.role === "replica" ? 1 : 0 },
    ]),
    gauge("beyond_pg_replication_timeline", "The timeline this node is on.", s.timeline),
  ];
  if (s.standbys?.length) {
    const st = s.standbys;
    out.push(
      gauge(
        "beyond_pg_replication_lag_bytes",
        "Replay lag of each standby in bytes.",
        st.map((x) => ({
          labels: { application_name: x.name, client: x.client },
          value: x.lagBytes.replay,
        })),
      ),
      gauge(
        "beyond_pg_replication_lag_seconds",
        "Replay lag of each standby in seconds.",
        st.map((x) => ({
          labels: { application_name: x.name, client: x.client },
          value: x.lagSeconds.replay ?? 0,
        })),
      ),
      gauge(
        "beyond_pg_replication_standby_lag_bytes",
        "Bytes between the primary's WAL and what each standby or sink has at each stage.",
        st.flatMap((x) =>
          (["sent", "write", "flush", "replay"] as const).map((stage) => ({
            labels: { standby: x.name, stage },
            value: x.lagBytes[stage],
          }))
        ),
      ),
      gauge(
        "beyond_pg_replication_standby_sync",
        "1 for a standby a commit may wait for (sync or quorum).",
        st.map((x) => ({
          labels: { standby: x.name },
          value: x.syncState === "sync" || x.syncState === "quorum" ? 1 : 0,
        })),
      ),
    );
  }
  if (s.sync) {
    out.push(
      gauge(
        "beyond_pg_replication_sync_quorum_met",
        "1 when enough synchronous standbys are connected; 0: commits wait.",
        s.sync.met ? 1 : 0,
      ),
      gauge(
        "beyond_pg_replication_commits_waiting",
        "Backends waiting for a synchronous standby now.",
        s.sync.waitingCommits,
      ),
    );
  }
  if (s.receiver) {
    out.push(
      gauge(
        "beyond_pg_replica_streaming",
        "1 while this replica streams from its primary.",
        s.receiver.status === "streaming" ? 1 : 0,
      ),
      gauge(
        "beyond_pg_replica_replay_lag_bytes",
        "WAL received but not replayed yet.",
        s.receiver.replayLagBytes,
      ),
    );
  }
  return out;
}

/** Snapshots every 2 s while postgres is up; a quorum lost or back is one log line. */
export class ReplicationMonitor {
  readonly #admin: Admin;
  readonly #now: () => ReplicationNow;
  readonly #up: () => boolean;
  #last: ReplicationSnapshot | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;
  #problem: string | undefined;

  constructor(admin: Admin, now: () => ReplicationNow, up: () => boolean) {
    this.#admin = admin;
    this.#now = now;
    this.#up = up;
  }

  get last(): ReplicationSnapshot | undefined {
    return this.#last;
  }

  /** Why commits wait now (undefined: they do not). */
  get problem(): string | undefined {
    return this.#last?.sync?.problem;
  }

  async refresh(): Promise<ReplicationSnapshot | undefined> {
    if (!this.#up()) return this.#last;
    try {
      this.#last = await takeSnapshot(this.#admin, this.#now());
    } catch (error) {
      log.debug(`replication snapshot: ${errorMessage(error)}`);
      return this.#last;
    }
    const p = this.#last.sync?.problem;
    if (p !== this.#problem) {
      if (p) log.warn(`replication: ${p}`);
      else if (this.#problem) log.info("replication: synchronous quorum met again");
      this.#problem = p;
    }
    return this.#last;
  }

  start(): void {
    this.#timer = setInterval(async () => {
      if (this.#busy) return;
      this.#busy = true;
      try {
        await this.refresh();
      } finally {
        this.#busy = false;
      }
    }, 2000);
    this.refresh();
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
