/**
 * PURE: conf.d/00-beyond.conf — the image's opinions, one reason each (the design document,
 * "Configuration", has the long form). Version gating happens in gate.ts.
 */
import type { ConfEntry, ConfValue } from "./conf_file.ts";

export interface BeyondConfInput {
  socketDir: string;
  directPort: number;
  archiveCommand: string;
  /** Final shared_preload_libraries (manifest order ∩ installed). */
  preload: string[];
  /** Settings of extensions whose library is present. */
  extensionSettings: Record<string, ConfValue>;
  walCompression: string;
  /** Extra listen addresses for replication peers (undefined: loopback only). */
  listen?: string | undefined;
  /** archive_timeout in seconds (set only with an archive target; 0: off). */
  archiveTimeoutS?: number;
  /** summarize_wal (PostgreSQL 17+ with an archive target: incremental backups need it). */
  summarizeWal?: boolean;
}

export function beyondEntries(i: BeyondConfInput): ConfEntry[] {
  const entries: ConfEntry[] = [
    // Networking: PgBouncer owns the public port; postgres is loopback + socket only.
    i.listen === undefined
      ? { name: "listen_addresses", value: "127.0.0.1", why: "direct port is loopback-only" }
      : {
        name: "listen_addresses",
        value: i.listen === "*"
          ? "*"
          : [...new Set(["127.0.0.1", ...i.listen.split(",").map((a) => a.trim())])].join(", "),
        why: "replication peers connect here (pg_hba.conf admits only them, with TLS)",
      },
    { name: "port", value: i.directPort },
    { name: "unix_socket_directories", value: i.socketDir },
    // Logging: stderr only; files in PGDATA would fork with every branch.
    { name: "log_destination", value: "stderr" },
    { name: "logging_collector", value: false },
    { name: "log_line_prefix", value: "%m [%p] %q[%a] db=%d,user=%u,client=%h " },
    { name: "log_min_duration_statement", value: 1000, why: "slow queries only" },
    { name: "log_statement", value: "ddl", why: "schema changes, cheap and high-signal" },
    {
      name: "log_connections",
      value: true,
      why: "18 reads on as receipt,authentication,authorization",
    },
    { name: "password_encryption", value: "scram-sha-256", why: "no MD5 (deprecated in 18)" },
    { name: "log_disconnections", value: true },
    { name: "log_lock_waits", value: true },
    { name: "log_temp_files", value: "10MB" },
    // Statistics and extensions that must be loaded at start.
    {
      name: "shared_preload_libraries",
      value: i.preload.join(", "),
      why: "restart-only: everything we may want is loaded now",
    },
    ...Object.entries(i.extensionSettings).map(([name, value]) => ({ name, value })),
    // Replication readiness (restart-only knobs, paid for now).
    { name: "wal_level", value: "logical" },
    { name: "max_wal_senders", value: 10 },
    { name: "max_replication_slots", value: 10 },
    { name: "hot_standby", value: true },
    { name: "synchronous_commit", value: true },
    // Archiving: on from day one (restart-only); the command is a no-op without a target.
    { name: "archive_mode", value: true },
    { name: "archive_command", value: i.archiveCommand },
    ...(i.archiveTimeoutS
      ? [{
        name: "archive_timeout",
        value: i.archiveTimeoutS,
        why: "an idle database's last commits reach the archive (RPO)",
      }]
      : []),
    ...(i.summarizeWal
      ? [{
        name: "summarize_wal",
        value: true,
        why: "incremental base backups (backup --incremental) read the WAL summaries",
      }]
      : []),
    // WAL and checkpoints: fewer, larger flushes that ride the storage flush window.
    { name: "full_page_writes", value: true, why: "torn pages are unrecoverable without it" },
    { name: "wal_sync_method", value: "fdatasync" },
    { name: "wal_compression", value: i.walCompression },
    { name: "checkpoint_timeout", value: "15min" },
    { name: "checkpoint_completion_target", value: 0.9 },
    {
      name: "recovery_init_sync_method",
      value: "syncfs",
      why: "crash recovery (a fork's boot) syncs the volume once, not every file by name",
    },
    { name: "bgwriter_delay", value: "100ms", why: "with lru_maxpages 1000: ~80 MB/s cleaning" },
    { name: "bgwriter_lru_maxpages", value: 1000 },
    // SSD-class storage.
    { name: "random_page_cost", value: 1.1 },
    { name: "effective_io_concurrency", value: 200 },
    // Defensive timeouts (statement_timeout stays unset on purpose).
    { name: "idle_in_transaction_session_timeout", value: "5min" },
    { name: "lock_timeout", value: "30s" },
    // Dead peers found in ~2 minutes instead of 2 hours.
    { name: "tcp_keepalives_idle", value: 60 },
    { name: "tcp_keepalives_interval", value: 10 },
    { name: "tcp_keepalives_count", value: 6 },
    // PostgreSQL 18's asynchronous I/O: worker processes (its default, pinned). io_uring is
    // faster on some disks but needs a kernel and seccomp policy that allow it, which a
    // container or a locked-down VM may not.
    {
      name: "io_method",
      value: "worker",
      why: "works in any VM or container; io_uring may be blocked",
      since: 18,
    },
    { name: "autovacuum_vacuum_scale_factor", value: 0.1 },
    { name: "autovacuum_naptime", value: "30s" },
    { name: "max_locks_per_transaction", value: 256, why: "pg_partman partition sets" },
  ];
  return entries;
}
