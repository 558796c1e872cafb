/**
 * PURE: metadata + environment (already merged into one record) → typed, validated Settings.
 * Each value is read and parsed as its row in the settings table (table.ts) says; this file
 * resolves names (aliases, `_FILE` forms) and checks what spans settings. Every problem is a
 * SettingsError whose message names the key, the bad value and the fix. File-valued settings
 * (password file, S3 CA, TLS dir, manifest) are read or checked here, before anything is
 * written.
 */
import type { ArchiveTarget } from "./archive_target.ts";
import { controlSocketIn, s3EndpointFor } from "./defaults.ts";
import { type ParseContext, SettingsError, type SseSetting } from "./parsers.ts";
import type { Secret } from "./secret.ts";
import { type SinkRef, type Tier } from "./parsers.ts";
import { NO_SYNC, standbyNameFrom, type SyncLevel, type SyncSpec } from "./sync_spec.ts";
import { freeTextNames, type ParsedName, settingsTable, type ValueOf } from "./table.ts";

export { type ParseContext, SettingsError };
export type { ArchiveTarget };

export type { SinkRef, SyncLevel, SyncSpec, Tier };

/** Replication: replicas (Tier 2) and WAL sinks (Tier 1.5). */
export interface ReplicationSettings {
  /** The primary a replica follows (tier replica). */
  primary: { host: string; port: number } | undefined;
  /** This node's name as a standby: application_name and slot. */
  standbyName: string;
  /** The replication role's password (tiers primary and replica, and with sinks). */
  password: Secret | undefined;
  /** CIDR blocks allowed to replicate. */
  peers: string[];
  /** postgres's extra listen addresses for peers; undefined: loopback only. */
  listen: string | undefined;
  /** What commits wait for (BEYOND_PG_SYNC_STANDBYS, else ANY quorum of the sinks). */
  sync: SyncSpec;
  syncLevel: SyncLevel;
  sinks: SinkRef[];
  sinkQuorum: number;
  sinkToken: Secret | undefined;
  sinkCaPem: string | undefined;
  sinkWaitMs: number;
}

/** `beyond-pg wal-sink`'s settings. */
export interface SinkSettings {
  primary: { host: string; port: number };
  name: string;
  password: Secret;
  token: Secret;
  dir: string;
  http: { hostname: string; port: number };
  tlsDir: string | undefined;
  keepMb: number;
  /**
   * When WAL is acknowledged: `flush` after fsync (pg_receivewal --synchronous), `write` after
   * write (libeatmydata preloaded into pg_receivewal; the sink fsyncs within 200 ms).
   */
  ack: "flush" | "write";
  binDir: string | undefined;
  /** Runtime files (the passfile), root's. */
  runDir: string;
}

export interface Settings {
  tier: Tier;
  replication: ReplicationSettings;
  ephemeral: boolean;
  password: Secret;
  database: string;
  /** BEYOND_PG_ARCHIVE_TARGET parsed once: `url` as given, its bucket and prefix. */
  archiveTarget: ArchiveTarget | undefined;
  /** BEYOND_PG_ARCHIVE_TARGET=off: archiving switched off on purpose (recorded in PGDATA). */
  archiveOff: boolean;
  /** This cluster takes its prefix's lineage over when it is on a newer timeline. */
  archivePromote: boolean;
  /** archive_timeout in seconds with a target (0: off). */
  archiveTimeoutS: number;
  /** Set when archiveTarget is. */
  s3: S3Settings | undefined;
  /** Fork detection, idle shutdown (lifecycle/). */
  lifecycle: LifecycleSettings;
  /** BEYOND_PG_HUGE_PAGES: reserve huge pages for postgres as PID 1 in our own VM (opt-in). */
  hugePages: "on" | "off";
  dataRoot: string;
  runDir: string;
  socketDir: string;
  port: number;
  directPort: number;
  listenAddr: string;
  binDir: string | undefined;
  pgbouncerBin: string;
  hooksDir: string;
  osUser: string;
  ramMb: number | undefined;
  vcpus: number | undefined;
  /** BEYOND_PG_EXTENSIONS, read at parse time (undefined: the bundled manifest). */
  extensionsManifest: { path: string; text: string } | undefined;
  seedDir: string;
  /** undefined = HTTP off. */
  http: { hostname: string; port: number } | undefined;
  controlSocket: string;
  controlVsockPort: number | undefined;
  /** The only vsock CID allowed to use control (2: the host). */
  controlVsockPeerCid: number;
  logVsock: "auto" | "true" | "false";
  logVsockCid: number;
  logVsockPort: number;
  logRate: number;
  logBurst: number;
  logMaxLine: number;
  logCapture: boolean;
  tlsDir: string;
  tlsNames: string[];
  tlsClientMode: "allow" | "require";
  stopTimeoutMs: number;
  hookTimeoutMs: number;
}

/** Where the S3 credentials come from. */
export type S3CredentialSettings =
  | { kind: "keys"; accessKeyId: string; secretAccessKey: Secret; sessionToken?: Secret }
  | { kind: "file"; path: string }
  | { kind: "url"; url: string; token?: Secret };

export interface LifecycleSettings {
  /** BEYOND_PG_VOLUME_ID: the platform's id of the data volume. */
  volumeId: string | undefined;
  /** BEYOND_PG_FORK_OF: the parent volume's id (this volume is a fork). */
  forkOf: string | undefined;
  /** BEYOND_PG_IDLE_SHUTDOWN in seconds (undefined: off). */
  idleShutdownS: number | undefined;
  /** BEYOND_PG_LOCK_WAIT in ms: how long to wait for the data root's lock. */
  lockWaitMs: number;
}

export interface S3Settings {
  endpoint: string;
  region: string;
  credentials: S3CredentialSettings;
  /** Attempts per request (BEYOND_PG_S3_ATTEMPTS). */
  attempts: number;
  urlStyle: "auto" | "path" | "virtual";
  sse: SseSetting | undefined;
  storageClass: string | undefined;
  /** Client-side encryption keys (the first encrypts); empty: not encrypted. */
  encryptionKeys: Secret[];
  /** BEYOND_PG_S3_CA_FILE (for messages) and the PEM read from it at parse time. */
  caFile: string | undefined;
  caPem: string | undefined;
  codec: "zstd" | "gzip" | "none";
  parallel: number;
  /** BEYOND_PG_S3_IDLE_TIMEOUT, in ms: no byte moved for this long fails a request. */
  idleMs: number;
}

function present(raw: Record<string, string | undefined>, key: string): string | undefined {
  const value = raw[key];
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The text of a setting and the name it came from: its own name, else each alias in order;
 * for each, the value or (fileForm) the content of the file `<name>_FILE` names, never both.
 */
function resolve(
  raw: Record<string, string | undefined>,
  name: ParsedName,
  ctx: ParseContext,
): { value: string | undefined; from: string } {
  const row = settingsTable[name];
  for (const key of [name, ...(row.aliases ?? [])]) {
    const inline = present(raw, key);
    const file = row.fileForm ? present(raw, `${key}_FILE`) : undefined;
    if (inline !== undefined && file !== undefined) {
      throw new SettingsError(`both ${key} and ${key}_FILE are set; set only one of them`);
    }
    if (inline !== undefined) return { value: inline, from: key };
    if (file === undefined) continue;
    let value: string;
    try {
      value = ctx.readFile(file).replace(/\r?\n$/, "");
    } catch (error) {
      throw new SettingsError(
        `${key}_FILE=${JSON.stringify(file)} cannot be read; point it at a readable file`,
        error,
      );
    }
    if (value === "") {
      throw new SettingsError(
        `${key}_FILE=${JSON.stringify(file)} is empty; put a non-empty secret in it`,
      );
    }
    return { value, from: key };
  }
  return { value: undefined, from: name };
}

/** A reader of settings by name: each is resolved and parsed by its table row when asked for. */
function reader(raw: Record<string, string | undefined>, ctx: ParseContext) {
  return <K extends ParsedName>(name: K): ValueOf<K> => {
    const { value, from } = resolve(raw, name, ctx);
    return settingsTable[name].parse(value, { ...ctx, name: from }) as ValueOf<K>;
  };
}

/**
 * Values end up in config files, command lines and logs: a newline in one would write extra
 * lines into pgbouncer.ini (a `%include` of anything). No setting but a secret may hold a
 * control character.
 */
function rejectControlCharacters(raw: Record<string, string | undefined>): void {
  const freeText = freeTextNames();
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || freeText.has(key) || !/^(BEYOND_|POSTGRES_|AWS_)/.test(key)) {
      continue;
    }
    // deno-lint-ignore no-control-regex
    if (/[\x00-\x1f\x7f]/.test(value)) {
      throw new SettingsError(
        `${key}=${JSON.stringify(value.slice(0, 60))} contains a control character; remove it`,
      );
    }
  }
}

/** One source of credentials: the key pair (and token), a file, or an endpoint. */
function s3Credentials(get: ReturnType<typeof reader>): S3CredentialSettings {
  const accessKeyId = get("BEYOND_PG_S3_ACCESS_KEY");
  const secretAccessKey = get("BEYOND_PG_S3_SECRET_KEY");
  const sessionToken = get("BEYOND_PG_S3_SESSION_TOKEN");
  const file = get("BEYOND_PG_S3_CREDENTIALS_FILE");
  const url = get("BEYOND_PG_S3_CREDENTIALS_URL");
  const token = get("BEYOND_PG_S3_CREDENTIALS_TOKEN");
  const keys = accessKeyId !== undefined || secretAccessKey !== undefined;
  const given = [
    keys && "BEYOND_PG_S3_ACCESS_KEY",
    file && "BEYOND_PG_S3_CREDENTIALS_FILE",
    url &&
    "BEYOND_PG_S3_CREDENTIALS_URL",
  ].filter(Boolean);
  if (given.length > 1) {
    throw new SettingsError(
      `S3 credentials are set in more than one way (${given.join(", ")}); set only one of them`,
    );
  }
  if (file) return { kind: "file", path: file };
  if (url) return { kind: "url", url, ...(token ? { token } : {}) };
  if (!accessKeyId || !secretAccessKey) {
    throw new SettingsError(
      "BEYOND_PG_ARCHIVE_TARGET is set but S3 credentials are not; set BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY (or their _FILE forms), BEYOND_PG_S3_CREDENTIALS_FILE or BEYOND_PG_S3_CREDENTIALS_URL",
    );
  }
  return {
    kind: "keys",
    accessKeyId,
    secretAccessKey,
    ...(sessionToken ? { sessionToken } : {}),
  };
}

function parseS3(get: ReturnType<typeof reader>): S3Settings {
  const region = get("BEYOND_PG_S3_REGION");
  const ca = get("BEYOND_PG_S3_CA_FILE");
  const endpoint = get("BEYOND_PG_S3_ENDPOINT") ?? s3EndpointFor(region);
  const sse = get("BEYOND_PG_S3_SSE");
  if (sse?.kind === "c" && !endpoint.startsWith("https:")) {
    throw new SettingsError(
      `BEYOND_PG_S3_SSE=c:… sends the encryption key with every request, and ${endpoint} is not HTTPS; use an https:// BEYOND_PG_S3_ENDPOINT`,
    );
  }
  return {
    endpoint,
    region,
    credentials: s3Credentials(get),
    attempts: get("BEYOND_PG_S3_ATTEMPTS"),
    urlStyle: get("BEYOND_PG_S3_URL_STYLE"),
    sse,
    storageClass: get("BEYOND_PG_S3_STORAGE_CLASS"),
    encryptionKeys: get("BEYOND_PG_ARCHIVE_ENCRYPTION_KEY") ?? [],
    caFile: ca?.path,
    caPem: ca?.pem,
    codec: get("BEYOND_PG_ARCHIVE_CODEC"),
    parallel: get("BEYOND_PG_ARCHIVE_PARALLEL"),
    idleMs: get("BEYOND_PG_S3_IDLE_TIMEOUT") * 1000,
  };
}

function parseReplication(
  get: ReturnType<typeof reader>,
  tier: Tier,
  postgresPassword: Secret,
  ctx: ParseContext,
): ReplicationSettings {
  const primary = get("BEYOND_PG_PRIMARY");
  if (tier === "replica" && !primary) {
    throw new SettingsError(
      "BEYOND_PG_TIER=replica needs BEYOND_PG_PRIMARY; set it to the primary's host:port (its direct port)",
    );
  }
  const sinks = get("BEYOND_PG_WAL_SINK");
  if (tier === "replica" && sinks.length) {
    throw new SettingsError(
      "BEYOND_PG_WAL_SINK is set on a replica; sinks stream from the primary: set it there only",
    );
  }
  const password = get("BEYOND_PG_REPLICATION_PASSWORD");
  if (!password && (tier !== "single" || sinks.length)) {
    throw new SettingsError(
      `${
        sinks.length ? "BEYOND_PG_WAL_SINK" : `BEYOND_PG_TIER=${tier}`
      } needs BEYOND_PG_REPLICATION_PASSWORD (or its _FILE form); set it to the replication role's own secret`,
    );
  }
  if (password && password.reveal() === postgresPassword.reveal()) {
    throw new SettingsError(
      "BEYOND_PG_REPLICATION_PASSWORD is the same as POSTGRES_PASSWORD; give the replication role a secret of its own",
    );
  }
  const quorum = get("BEYOND_PG_WAL_SINK_QUORUM");
  const token = get("BEYOND_PG_WAL_SINK_TOKEN");
  if (sinks.length && !token) {
    throw new SettingsError(
      "BEYOND_PG_WAL_SINK is set but BEYOND_PG_WAL_SINK_TOKEN is not; set it (or its _FILE form) to the sinks' bearer token",
    );
  }
  if (sinks.length && quorum > sinks.length) {
    throw new SettingsError(
      `BEYOND_PG_WAL_SINK_QUORUM=${quorum} but only ${sinks.length} sink(s) are configured; use 1 to ${sinks.length}`,
    );
  }
  const sync = get("BEYOND_PG_SYNC_STANDBYS") ??
    (sinks.length ? { method: "ANY", k: quorum, names: sinks.map((s) => s.name) } : NO_SYNC);
  const syncLevel = get("BEYOND_PG_SYNC_COMMIT");
  const sinkNames = new Set(sinks.map((s) => s.name));
  if (syncLevel === "remote_apply" && sync.names.some((n) => sinkNames.has(n))) {
    throw new SettingsError(
      "BEYOND_PG_SYNC_COMMIT=remote_apply with a WAL sink among the synchronous standbys: a sink never applies WAL, so commits would wait forever; use remote_write or on",
    );
  }
  const listen = get("BEYOND_PG_REPLICATION_LISTEN") ??
    (tier !== "single" || sinks.length ? "*" : undefined);
  return {
    primary,
    standbyName: get("BEYOND_PG_STANDBY_NAME") ?? standbyNameFrom(ctx.hostname?.() ?? ""),
    password,
    peers: get("BEYOND_PG_REPLICATION_PEERS"),
    listen,
    sync,
    syncLevel,
    sinks,
    sinkQuorum: quorum,
    sinkToken: token,
    sinkCaPem: get("BEYOND_PG_WAL_SINK_CA_FILE")?.pem,
    sinkWaitMs: get("BEYOND_PG_WAL_SINK_WAIT") * 1000,
  };
}

/** `beyond-pg wal-sink`'s settings; the first problem found is thrown. */
export function parseSinkSettings(
  raw: Record<string, string | undefined>,
  ctx: ParseContext,
): SinkSettings {
  rejectControlCharacters(raw);
  const get = reader(raw, ctx);
  const primary = get("BEYOND_PG_PRIMARY");
  if (!primary) {
    throw new SettingsError(
      "wal-sink needs BEYOND_PG_PRIMARY; set it to the primary's host:port (its direct port)",
    );
  }
  const password = get("BEYOND_PG_REPLICATION_PASSWORD");
  if (!password) {
    throw new SettingsError(
      "wal-sink needs BEYOND_PG_REPLICATION_PASSWORD (or its _FILE form): the replication role's password",
    );
  }
  const token = get("BEYOND_PG_WAL_SINK_TOKEN");
  if (!token || token.reveal().length < 16) {
    throw new SettingsError(
      "wal-sink needs BEYOND_PG_WAL_SINK_TOKEN (or its _FILE form) of at least 16 characters: the bearer token the primary presents",
    );
  }
  const dir = get("BEYOND_PG_SINK_DIR");
  if (!dir) {
    throw new SettingsError("wal-sink needs BEYOND_PG_SINK_DIR: the directory to keep WAL in");
  }
  return {
    primary,
    name: get("BEYOND_PG_STANDBY_NAME") ?? standbyNameFrom(ctx.hostname?.() ?? ""),
    password,
    token,
    dir,
    http: get("BEYOND_PG_SINK_HTTP"),
    tlsDir: get("BEYOND_PG_SINK_TLS_DIR"),
    keepMb: get("BEYOND_PG_SINK_KEEP_MB"),
    ack: get("BEYOND_PG_SINK_ACK"),
    binDir: get("BEYOND_PG_BIN_DIR"),
    runDir: get("BEYOND_PG_RUN_DIR"),
  };
}

/** Validate everything; the first problem found is thrown. */
export function parseSettings(
  raw: Record<string, string | undefined>,
  ctx: ParseContext,
): Settings {
  rejectControlCharacters(raw);
  const get = reader(raw, ctx);
  const port = get("BEYOND_PG_PORT");
  const directPort = get("BEYOND_PG_DIRECT_PORT");
  if (port === directPort) {
    throw new SettingsError(
      `BEYOND_PG_PORT and BEYOND_PG_DIRECT_PORT are both ${port}; give them different ports`,
    );
  }
  const stopTimeout = get("BEYOND_PG_STOP_TIMEOUT");
  const hookTimeout = get("BEYOND_PG_HOOK_TIMEOUT");
  const tier = get("BEYOND_PG_TIER");
  const runDir = get("BEYOND_PG_RUN_DIR");
  const socketDir = get("BEYOND_PG_SOCKET_DIR");
  if (runDir === socketDir) {
    // The socket dir belongs to postgres; our control socket must not live where it can write.
    throw new SettingsError(
      `BEYOND_PG_SOCKET_DIR and BEYOND_PG_RUN_DIR are both ${runDir}; give them different directories`,
    );
  }
  const ephemeral = get("BEYOND_VOLUME_EPHEMERAL");
  const password = get("POSTGRES_PASSWORD");
  const replication = parseReplication(get, tier, password, ctx);
  const database = get("POSTGRES_DATABASE");
  const target = get("BEYOND_PG_ARCHIVE_TARGET");
  const archiveTarget = target === "off" ? undefined : target;
  return {
    tier,
    replication,
    ephemeral,
    password,
    database,
    archiveTarget,
    archiveOff: target === "off",
    archivePromote: get("BEYOND_PG_ARCHIVE_PROMOTE"),
    archiveTimeoutS: get("BEYOND_PG_ARCHIVE_TIMEOUT"),
    s3: archiveTarget ? parseS3(get) : undefined,
    hugePages: get("BEYOND_PG_HUGE_PAGES") ?? "off",
    lifecycle: {
      volumeId: get("BEYOND_PG_VOLUME_ID"),
      forkOf: get("BEYOND_PG_FORK_OF"),
      idleShutdownS: get("BEYOND_PG_IDLE_SHUTDOWN"),
      lockWaitMs: (get("BEYOND_PG_LOCK_WAIT") ?? 1.5) * 1000,
    },
    dataRoot: get("BEYOND_PG_DATA_ROOT"),
    runDir,
    socketDir,
    port,
    directPort,
    listenAddr: get("BEYOND_PG_LISTEN_ADDR"),
    binDir: get("BEYOND_PG_BIN_DIR"),
    pgbouncerBin: get("BEYOND_PG_PGBOUNCER"),
    hooksDir: get("BEYOND_PG_HOOKS_DIR"),
    osUser: get("BEYOND_PG_OS_USER"),
    ramMb: get("BEYOND_PG_RAM_MB"),
    vcpus: get("BEYOND_PG_VCPUS"),
    extensionsManifest: get("BEYOND_PG_EXTENSIONS"),
    seedDir: get("BEYOND_PG_SEED_DIR"),
    http: get("BEYOND_PG_HTTP"),
    controlSocket: get("BEYOND_PG_CONTROL_SOCKET") ?? controlSocketIn(runDir),
    controlVsockPort: get("BEYOND_PG_CONTROL_VSOCK_PORT"),
    controlVsockPeerCid: get("BEYOND_PG_CONTROL_VSOCK_PEER_CID"),
    logVsock: get("BEYOND_LOG_VSOCK"),
    logVsockCid: get("BEYOND_LOG_VSOCK_CID"),
    logVsockPort: get("BEYOND_LOG_VSOCK_PORT"),
    logRate: get("BEYOND_PG_LOG_RATE"),
    logBurst: get("BEYOND_PG_LOG_BURST"),
    logMaxLine: get("BEYOND_PG_LOG_MAX_LINE"),
    logCapture: get("BEYOND_PG_LOG_CAPTURE"),
    tlsDir: get("BEYOND_PG_TLS_DIR"),
    tlsNames: get("BEYOND_PG_TLS_NAMES"),
    tlsClientMode: get("BEYOND_PG_TLS_CLIENT_MODE"),
    stopTimeoutMs: stopTimeout * 1000,
    hookTimeoutMs: hookTimeout * 1000,
  };
}
