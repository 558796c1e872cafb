/** Fixtures shared by the config unit tests (not shipped code paths). */
import { parseSettings, type Settings } from "../settings/settings.ts";
import type { ServerCaps } from "./gate.ts";
import { layoutFor } from "./layout.ts";
import { parseManifest } from "./manifest.ts";
import type { PlanInput } from "./plan.ts";

export function settingsFixture(raw: Record<string, string> = {}): Settings {
  return parseSettings({ POSTGRES_PASSWORD: "pw", BEYOND_PG_DATA_ROOT: "/data", ...raw }, {
    major: 15,
    readFile: () => "",
  });
}

export const allSettings15 = new Set([
  "listen_addresses",
  "port",
  "unix_socket_directories",
  "log_destination",
  "logging_collector",
  "log_line_prefix",
  "log_min_duration_statement",
  "log_statement",
  "log_connections",
  "log_disconnections",
  "password_encryption",
  "log_lock_waits",
  "log_temp_files",
  "shared_preload_libraries",
  "wal_level",
  "max_wal_senders",
  "max_replication_slots",
  "hot_standby",
  "wal_keep_size",
  "synchronous_commit",
  "archive_mode",
  "archive_command",
  "archive_timeout",
  "full_page_writes",
  "wal_sync_method",
  "wal_compression",
  "checkpoint_timeout",
  "max_wal_size",
  "min_wal_size",
  "checkpoint_completion_target",
  "recovery_init_sync_method",
  "bgwriter_delay",
  "bgwriter_lru_maxpages",
  "random_page_cost",
  "effective_io_concurrency",
  "idle_in_transaction_session_timeout",
  "lock_timeout",
  "tcp_keepalives_idle",
  "tcp_keepalives_interval",
  "tcp_keepalives_count",
  "autovacuum_vacuum_scale_factor",
  "autovacuum_naptime",
  "max_locks_per_transaction",
  "shared_buffers",
  "effective_cache_size",
  "maintenance_work_mem",
  "work_mem",
  "max_connections",
  "wal_buffers",
  "max_worker_processes",
  "max_parallel_workers",
  "max_parallel_workers_per_gather",
  "max_parallel_maintenance_workers",
  "ssl",
  "ssl_cert_file",
  "ssl_key_file",
  "ssl_ca_file",
  "ssl_min_protocol_version",
]);

export const manifestFixture = parseManifest(
  await Deno.readTextFile(new URL("../../conf/extensions.toml", import.meta.url)),
  "conf/extensions.toml",
);

export function capsFixture(over: Partial<ServerCaps> = {}): ServerCaps {
  return {
    major: 15,
    knownSettings: allSettings15,
    libraries: new Set(["pg_stat_statements", "auto_explain", "pg_cron", "pg_trgm", "postgis-3"]),
    lz4: true,
    ...over,
  };
}

export function planInputFixture(over: Partial<PlanInput> = {}): PlanInput {
  const settings = over.settings ?? settingsFixture();
  return {
    settings,
    layout: layoutFor(settings),
    ramMb: 2048,
    vcpus: 2,
    caps: capsFixture(),
    manifest: manifestFixture,
    pgbouncerVersion: "1.18.0",
    archiveCommand: "/usr/local/bin/beyond-pg archive %p %f",
    identUsers: ["root"],
    ...over,
  };
}
