/**
 * PURE: conf.d/03-replication.conf — one renderer for every replication role: a primary with
 * replicas (Tier 2), a primary with WAL sinks (Tier 1.5), and a replica. Written at boot and
 * again (then SIGHUP) by the RPCs that change the role or the synchronous standbys; everything
 * here is reloadable except `archive_mode` and `wal_log_hints`, which are the same for every
 * role of a tier, so a promotion never needs a restart.
 */
import type { SyncLevel, SyncSpec } from "../settings/sync_spec.ts";
import { formatSyncSpec } from "../settings/sync_spec.ts";
import type { ConfEntry } from "./conf_file.ts";
import { clamp } from "./tuning.ts";

/** The one role replicas, WAL sinks and pg_rewind log in as (never the app's role). */
export const REPLICATION_ROLE = "beyond_replicator";

/** What this node is now (the tier says what it boots as; promote and rejoin change it). */
export type ReplicationRole = "primary" | "replica";

export interface Upstream {
  host: string;
  port: number;
  /** Our name there: application_name and slot. */
  name: string;
  /** The passfile postgres reads the replication password from (its own secret). */
  passfile: string;
}

export interface ReplicationConfInput {
  /** Streaming replicas are part of this deployment (tier primary or replica). */
  replicas: boolean;
  role: ReplicationRole;
  /** A replica's primary. */
  upstream?: Upstream | undefined;
  /** A replica's restore_command (an archive is configured). */
  restoreCommand?: string | undefined;
  /** A primary's synchronous standbys (sinks and replicas alike). */
  sync: SyncSpec;
  level: SyncLevel;
  /** Size of the data volume in MB (slots may keep at most a quarter of it). */
  volumeMb?: number | undefined;
}

/** libpq's conninfo quoting: a value with a space, quote or backslash is single-quoted. */
export function conninfoValue(v: string | number): string {
  const s = String(v);
  return /^[^\s'\\]+$/.test(s) ? s : `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}

/**
 * How a replica (or pg_basebackup, pg_rewind, a sink) connects to its primary: the
 * replication role, the password from a passfile (never on a command line), TLS required and
 * SCRAM channel binding, which also proves the server knows the verifier (a self-signed
 * certificate cannot be verified, the binding can).
 */
export function upstreamConninfo(u: Upstream, extra: Record<string, string> = {}): string {
  const parts: Record<string, string | number> = {
    host: u.host,
    port: u.port,
    user: REPLICATION_ROLE,
    passfile: u.passfile,
    application_name: u.name,
    sslmode: "require",
    channel_binding: "require",
    connect_timeout: 5,
    keepalives_idle: 10,
    keepalives_interval: 5,
    keepalives_count: 3,
    ...extra,
  };
  return Object.entries(parts).map(([k, v]) => `${k}=${conninfoValue(v)}`).join(" ");
}

/** The entries of 03-replication.conf; undefined when the file should not exist. */
export function replicationEntries(i: ReplicationConfInput): ConfEntry[] | undefined {
  const syncOn = i.sync.names.length > 0 && i.sync.k > 0;
  if (!i.replicas && !syncOn && i.role === "primary") return undefined;
  const entries: ConfEntry[] = [];
  if (i.replicas) {
    entries.push(
      {
        name: "wal_log_hints",
        value: true,
        why: "pg_rewind needs it (or data checksums, which clusters made here have)",
      },
      {
        name: "archive_mode",
        value: "always",
        why: "standbys archive what they received: a primary that dies unarchived leaves no gap",
      },
    );
  }
  const slotCapMb = clamp(Math.floor((i.volumeMb ?? 16384) / 4), 1024, 65536);
  entries.push({
    name: "max_slot_wal_keep_size",
    value: `${slotCapMb}MB`,
    why: "a standby or sink gone for good cannot fill the volume (a quarter of it at most)",
  });
  if (i.role === "primary") {
    entries.push({
      name: "synchronous_standby_names",
      value: syncOn ? formatSyncSpec(i.sync) : "",
      ...(syncOn ? { why: "a commit is acknowledged once these standbys have it" } : {}),
    });
    if (syncOn) entries.push({ name: "synchronous_commit", value: i.level });
    return entries;
  }
  if (!i.upstream) throw new Error("a replica's replication config needs its primary");
  entries.push(
    { name: "primary_conninfo", value: upstreamConninfo(i.upstream) },
    { name: "primary_slot_name", value: i.upstream.name },
    {
      name: "recovery_target_timeline",
      value: "latest",
      why: "follow the primary across a promotion",
    },
  );
  if (i.restoreCommand) {
    entries.push({
      name: "restore_command",
      value: i.restoreCommand,
      why: "catch up from the archive when the primary no longer has the WAL",
    });
  }
  return entries;
}
