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
import { type ParseContext, SettingsError } from "./parsers.ts";
import type { Secret } from "./secret.ts";
import { freeTextNames, type ParsedName, settingsTable, type ValueOf } from "./table.ts";

export { type ParseContext, SettingsError };
export type { ArchiveTarget };

export type Tier = "single";

export interface Settings {
  tier: Tier;
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
  accessKeyId: string;
  secretAccessKey: Secret;
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

function parseS3(get: ReturnType<typeof reader>): S3Settings {
  const region = get("BEYOND_PG_S3_REGION");
  const accessKeyId = get("BEYOND_PG_S3_ACCESS_KEY");
  const secretAccessKey = get("BEYOND_PG_S3_SECRET_KEY");
  if (!accessKeyId || !secretAccessKey) {
    throw new SettingsError(
      "BEYOND_PG_ARCHIVE_TARGET is set but S3 credentials are not; set BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY (or their _FILE forms)",
    );
  }
  const ca = get("BEYOND_PG_S3_CA_FILE");
  return {
    endpoint: get("BEYOND_PG_S3_ENDPOINT") ?? s3EndpointFor(region),
    region,
    accessKeyId,
    secretAccessKey,
    caFile: ca?.path,
    caPem: ca?.pem,
    codec: get("BEYOND_PG_ARCHIVE_CODEC"),
    parallel: get("BEYOND_PG_ARCHIVE_PARALLEL"),
    idleMs: get("BEYOND_PG_S3_IDLE_TIMEOUT") * 1000,
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
  const database = get("POSTGRES_DATABASE");
  const target = get("BEYOND_PG_ARCHIVE_TARGET");
  const archiveTarget = target === "off" ? undefined : target;
  return {
    tier,
    ephemeral,
    password,
    database,
    archiveTarget,
    archiveOff: target === "off",
    archivePromote: get("BEYOND_PG_ARCHIVE_PROMOTE"),
    archiveTimeoutS: get("BEYOND_PG_ARCHIVE_TIMEOUT"),
    s3: archiveTarget ? parseS3(get) : undefined,
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
