/**
 * PURE: the settings table's replication rows (table.ts merges them): Tier 2 (replicas,
 * synchronous standbys), Tier 1.5 (WAL sinks) on the database side, and the `wal-sink`
 * command's own settings.
 */
import {
  absolutePath,
  choice,
  cidrList,
  directory,
  hostPort,
  listenAddresses,
  listenHostPort,
  pemFile,
  replicationPassword,
  secret,
  standbyName,
  syncLevel,
  syncStandbys,
  walSinks,
  wholeNumber,
} from "./parsers.ts";
import { setting } from "./setting.ts";

export const replicationSettings = {
  BEYOND_PG_PRIMARY: setting({
    group: "replication",
    shown: "required on a replica",
    doc: "the primary a replica follows and clones from: `host:port` of its direct port",
    parse: hostPort,
  }),
  BEYOND_PG_STANDBY_NAME: setting({
    group: "replication",
    shown: "the host name",
    doc: "this node's name as a standby or sink: its `application_name` and slot (a-z, 0-9, _)",
    parse: standbyName,
  }),
  BEYOND_PG_REPLICATION_PASSWORD: setting({
    group: "replication",
    shown: "required with replicas or sinks",
    secret: true,
    fileForm: true,
    doc: "password of the replication role `beyond_replicator` (never the app's role)",
    parse: replicationPassword,
  }),
  BEYOND_PG_REPLICATION_PEERS: setting({
    group: "replication",
    default: "",
    doc: "addresses or CIDR blocks allowed to replicate (TLS + SCRAM), separated by commas",
    parse: cidrList,
  }),
  BEYOND_PG_REPLICATION_LISTEN: setting({
    group: "replication",
    shown: "`*` on primary and replica tiers or with sinks, else none",
    doc: "where PostgreSQL's direct port listens for peers, besides 127.0.0.1",
    parse: listenAddresses,
  }),
  BEYOND_PG_SYNC_STANDBYS: setting({
    group: "replication",
    shown: "the WAL sinks (`ANY` quorum), else none",
    doc: "standbys a commit waits for: `ANY k (a, b)`, `FIRST k (a, b)` or names",
    parse: syncStandbys,
  }),
  BEYOND_PG_SYNC_COMMIT: setting({
    group: "replication",
    default: "remote_write",
    doc: "what a commit waits for on them: `remote_write`, `on` or `remote_apply`",
    parse: syncLevel,
  }),
  BEYOND_PG_WAL_SINK: setting({
    group: "replication",
    default: "",
    doc: "WAL sinks (Tier 1.5): `name=https://host:port`, separated by commas",
    parse: walSinks,
  }),
  BEYOND_PG_WAL_SINK_QUORUM: setting({
    group: "replication",
    default: "1",
    doc: "sinks that must have a commit before it is acknowledged (`ANY k`)",
    parse: wholeNumber(1, 16),
  }),
  BEYOND_PG_WAL_SINK_TOKEN: setting({
    group: "replication",
    shown: "required with sinks",
    secret: true,
    fileForm: true,
    doc: "bearer token of the sinks' HTTP API (the primary and each sink)",
    parse: secret,
  }),
  BEYOND_PG_WAL_SINK_CA_FILE: setting({
    group: "replication",
    shown: "system roots",
    doc: "PEM CA to trust for sinks served over HTTPS (read at start)",
    parse: pemFile,
  }),
  BEYOND_PG_WAL_SINK_WAIT: setting({
    group: "replication",
    default: "30",
    doc: "seconds boot waits for an unreachable sink before it starts without the gap check",
    parse: wholeNumber(0, 86400),
  }),
  BEYOND_PG_SINK_DIR: setting({
    group: "replication",
    shown: "required for `wal-sink`",
    doc: "`wal-sink`: where the received WAL is kept",
    parse: absolutePath,
  }),
  BEYOND_PG_SINK_HTTP: setting({
    group: "replication",
    default: "127.0.0.1:7432",
    doc: "`wal-sink`: where its HTTP API listens (`host:port`)",
    parse: listenHostPort,
  }),
  BEYOND_PG_SINK_TLS_DIR: setting({
    group: "replication",
    shown: "plain HTTP",
    doc: "`wal-sink`: `cert.pem` and `key.pem` to serve HTTPS with",
    parse: directory,
  }),
  BEYOND_PG_SINK_ACK: setting({
    group: "replication",
    default: "flush",
    doc:
      "`wal-sink`: when it acknowledges WAL: `flush` once on its disk (right for any `synchronous_commit`), `write` once written, fsynced within 200 ms (the promise of `remote_write`; not for primaries at `on`)",
    parse: choice(["flush", "write"] as const),
  }),
  BEYOND_PG_SINK_KEEP_MB: setting({
    group: "replication",
    default: "2048",
    doc: "`wal-sink`: complete segments beyond this many MB are removed, oldest first",
    parse: wholeNumber(64, 1 << 24),
  }),
};
