/**
 * Every setting beyond-pg reads, by the name used both in instance metadata (MMDS) and in the
 * environment. Metadata wins over the environment for the same name.
 */
export interface KeyDoc {
  name: string;
  default: string;
  doc: string;
}

export const settingKeys: readonly KeyDoc[] = [
  { name: "POSTGRES_PASSWORD", default: "(required)", doc: "password of the postgres role" },
  {
    name: "POSTGRES_PASSWORD_FILE",
    default: "",
    doc: "file holding the password (instead of POSTGRES_PASSWORD)",
  },
  { name: "POSTGRES_DATABASE", default: "postgres", doc: "database created for the app" },
  { name: "BEYOND_PG_TIER", default: "single", doc: "deployment tier (single)" },
  {
    name: "BEYOND_VOLUME_EPHEMERAL",
    default: "false",
    doc: "true on throwaway volumes: synchronous_commit = off",
  },
  {
    name: "BEYOND_PG_ARCHIVE_TARGET",
    default: "",
    doc: "s3://bucket/prefix for WAL archiving; off to stop archiving a volume on purpose",
  },
  {
    name: "BEYOND_PG_ARCHIVE_PROMOTE",
    default: "false",
    doc: "true: this cluster becomes its prefix's primary when it is on a newer timeline",
  },
  {
    name: "BEYOND_PG_ARCHIVE_TIMEOUT",
    default: "60",
    doc: "archive_timeout (s) with a target: an idle database's last commits reach the archive",
  },
  {
    name: "BEYOND_PG_S3_ENDPOINT",
    default: "https://s3.<region>.amazonaws.com",
    doc: "S3 endpoint URL",
  },
  { name: "BEYOND_PG_S3_REGION", default: "us-east-1", doc: "S3 region" },
  {
    name: "BEYOND_PG_S3_ACCESS_KEY",
    default: "(AWS_ACCESS_KEY_ID)",
    doc: "access key id (or BEYOND_PG_S3_ACCESS_KEY_FILE)",
  },
  {
    name: "BEYOND_PG_S3_SECRET_KEY",
    default: "(AWS_SECRET_ACCESS_KEY)",
    doc: "secret key (or BEYOND_PG_S3_SECRET_KEY_FILE)",
  },
  {
    name: "BEYOND_PG_S3_CA_FILE",
    default: "",
    doc: "extra CA certificates (PEM) for the endpoint",
  },
  { name: "BEYOND_PG_ARCHIVE_CODEC", default: "zstd", doc: "WAL compression: zstd, gzip or none" },
  { name: "BEYOND_PG_ARCHIVE_PARALLEL", default: "4", doc: "uploads in flight ahead of postgres" },
  {
    name: "BEYOND_PG_RESTORE_RETRY_SECONDS",
    default: "30",
    doc: "restore-wal run by hand: how long an unreachable store is retried before exit 126",
  },
  { name: "BEYOND_PG_WAL_SINK", default: "", doc: "HTTP endpoint of a WAL sink (Tier 1.5)" },
  {
    name: "BEYOND_PG_DATA_ROOT",
    default: "/var/lib/postgresql/<major>",
    doc: "volume root; PGDATA is <root>/main, WAL <root>/wal",
  },
  { name: "BEYOND_PG_RUN_DIR", default: "/run/beyond-pg", doc: "runtime files (tmpfs)" },
  { name: "BEYOND_PG_SOCKET_DIR", default: "/var/run/postgresql", doc: "Unix socket directory" },
  { name: "BEYOND_PG_PORT", default: "5432", doc: "PgBouncer port (apps)" },
  { name: "BEYOND_PG_DIRECT_PORT", default: "5433", doc: "Postgres port on 127.0.0.1 (direct)" },
  { name: "BEYOND_PG_LISTEN_ADDR", default: "0.0.0.0", doc: "address PgBouncer listens on" },
  { name: "BEYOND_PG_BIN_DIR", default: "(newest installed)", doc: "Postgres bin directory" },
  { name: "BEYOND_PG_PGBOUNCER", default: "pgbouncer", doc: "PgBouncer executable" },
  {
    name: "BEYOND_PG_HOOKS_DIR",
    default: "/etc/beyond-pg/hooks",
    doc: "pre-start.d, post-start.d, pre-stop.d, pre-fork.d",
  },
  {
    name: "BEYOND_PG_OS_USER",
    default: "postgres",
    doc: "OS user for postgres when started as root",
  },
  { name: "BEYOND_PG_RAM_MB", default: "(detected)", doc: "RAM used for tuning" },
  { name: "BEYOND_PG_VCPUS", default: "(detected)", doc: "vCPUs used for tuning" },
  {
    name: "BEYOND_PG_EXTENSIONS",
    default: "(bundled conf/extensions.toml)",
    doc: "extension manifest",
  },
  {
    name: "BEYOND_PG_SEED_DIR",
    default: "/usr/lib/beyond-pg/seed",
    doc: "prepared cluster copied on first boot (`beyond-pg seed` builds it)",
  },
  { name: "BEYOND_PG_STOP_TIMEOUT", default: "30", doc: "seconds for a fast shutdown" },
  { name: "BEYOND_PG_HOOK_TIMEOUT", default: "60", doc: "seconds each hook may run" },
  {
    name: "BEYOND_PG_HTTP",
    default: "127.0.0.1:9188",
    doc: "/healthz, /readyz, /metrics (off to disable)",
  },
  {
    name: "BEYOND_PG_CONTROL_SOCKET",
    default: "<run dir>/control/control.sock",
    doc: "control RPC Unix socket (0600)",
  },
  {
    name: "BEYOND_PG_CONTROL_VSOCK_PORT",
    default: "(off; 5000 as PID 1 in a VM)",
    doc: "control RPC on vsock",
  },
  {
    name: "BEYOND_PG_CONTROL_VSOCK_PEER_CID",
    default: "2",
    doc: "the only vsock CID served on the control port (2: the host)",
  },
  {
    name: "BEYOND_LOG_VSOCK",
    default: "auto",
    doc: "log frames to vsock: auto (PID 1 in a VM), true, false",
  },
  { name: "BEYOND_LOG_VSOCK_CID", default: "2", doc: "vsock CID of the log receiver (the host)" },
  { name: "BEYOND_LOG_VSOCK_PORT", default: "5002", doc: "vsock port of the log receiver" },
  { name: "BEYOND_PG_LOG_RATE", default: "500", doc: "log lines per second forwarded (sustained)" },
  { name: "BEYOND_PG_LOG_BURST", default: "1000", doc: "log lines forwarded in a burst" },
  { name: "BEYOND_PG_LOG_MAX_LINE", default: "8192", doc: "longer log lines are cut (bytes)" },
  {
    name: "BEYOND_PG_LOG_CAPTURE",
    default: "true",
    doc: "false: children write to our stderr directly (no prefix, limits or forwarding)",
  },
  {
    name: "BEYOND_PG_TLS_DIR",
    default: "/run/beyond/tls",
    doc: "platform-provisioned cert.pem, key.pem, ca.pem",
  },
  {
    name: "BEYOND_PG_TLS_NAMES",
    default: "",
    doc: "extra DNS names for the self-signed certificate",
  },
  {
    name: "BEYOND_PG_TLS_CLIENT_MODE",
    default: "allow",
    doc: "PgBouncer client_tls_sslmode: allow or require",
  },
  { name: "BEYOND_MMDS_URL", default: "(off; on as PID 1)", doc: "metadata service base URL" },
];
