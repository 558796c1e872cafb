/**
 * PURE: every setting beyond-pg reads, once. Each row has its group, default (as people see
 * it and as the parser gets it), one line of doc, whether it is a secret, the names it also
 * answers to, and its parser. parseSettings (settings.ts), `beyond-pg settings` and README's
 * configuration table all read this; tests check that nothing names a setting missing here.
 * The same names are used in instance metadata (MMDS) and the environment; metadata wins.
 */
import { defaultDataDevice, defaultRunDir, defaultSeedDir } from "./defaults.ts";
import {
  absolutePath,
  bool,
  choice,
  database,
  directory,
  http,
  list,
  listenAddr,
  password,
  passwordMissing,
  port,
  text,
  textFile,
  tier,
  wholeNumber,
} from "./parsers.ts";
import { type ExternalSetting, type Setting, setting, shownDefault } from "./setting.ts";
import { external } from "./setting.ts";
import { archiveSettings } from "./table_archive.ts";
import { replicationSettings } from "./table_replication.ts";
import {
  hugePageSettings,
  idleSettings,
  lockWaitSettings,
  volumeSettings,
} from "./table_lifecycle.ts";

const detected = "detected (cgroup v2, v1, `/proc`)";

export const settingsTable = {
  POSTGRES_PASSWORD: setting({
    group: "database",
    shown: "required",
    secret: true,
    fileForm: true,
    doc: "password of the `postgres` role; a changed value applies at boot",
    orElse: passwordMissing,
    parse: password,
  }),
  POSTGRES_DATABASE: setting({
    group: "database",
    default: "postgres",
    doc: "database created for the app",
    parse: database,
  }),
  BEYOND_PG_TIER: setting({
    group: "database",
    default: "single",
    doc:
      "`single`, `primary` (accepts replicas and sinks) or `replica` (follows `BEYOND_PG_PRIMARY`)",
    parse: tier,
  }),
  BEYOND_VOLUME_EPHEMERAL: setting({
    group: "database",
    default: "false",
    doc: "`true` on throwaway volumes: `synchronous_commit = off`",
    parse: bool,
  }),
  ...archiveSettings,
  ...replicationSettings,
  BEYOND_PG_PORT: setting({
    group: "network",
    default: "5432",
    doc: "PgBouncer's port (apps connect here)",
    parse: port,
  }),
  BEYOND_PG_DIRECT_PORT: setting({
    group: "network",
    default: "5433",
    doc: "PostgreSQL's own port (direct, without PgBouncer)",
    parse: port,
  }),
  BEYOND_PG_LISTEN_ADDR: setting({
    group: "network",
    default: "0.0.0.0",
    doc: "where PgBouncer listens: `*`, or addresses separated by commas",
    parse: listenAddr,
  }),
  BEYOND_PG_HTTP: setting({
    group: "network",
    default: "127.0.0.1:9188",
    doc: "`/healthz`, `/readyz`, `/metrics` (`off` to disable)",
    parse: http,
  }),
  BEYOND_PG_DATA_ROOT: setting({
    group: "paths",
    shown: "`/var/lib/postgresql/<major>`",
    doc: "the volume: PGDATA is `<root>/main`, WAL `<root>/wal`",
    orElse: (c) => `/var/lib/postgresql/${c.major}`,
    parse: absolutePath,
  }),
  BEYOND_PG_RUN_DIR: setting({
    group: "paths",
    default: defaultRunDir,
    doc: "runtime files (root's; must differ from the socket dir)",
    parse: absolutePath,
  }),
  BEYOND_PG_SOCKET_DIR: setting({
    group: "paths",
    default: "/var/run/postgresql",
    doc: "Unix sockets",
    parse: absolutePath,
  }),
  BEYOND_PG_HOOKS_DIR: setting({
    group: "paths",
    default: "/etc/beyond-pg/hooks",
    doc: "`pre-start.d`, `post-start.d`, `pre-stop.d` executables (root's)",
    parse: absolutePath,
  }),
  BEYOND_PG_SEED_DIR: setting({
    group: "paths",
    default: defaultSeedDir,
    doc: "prepared cluster copied on first boot (`beyond-pg seed` builds it)",
    parse: absolutePath,
  }),
  BEYOND_PG_EXTENSIONS: setting({
    group: "paths",
    shown: "bundled `conf/extensions.toml`",
    doc: "extension manifest (read at start)",
    parse: textFile("TOML manifest"),
  }),
  BEYOND_PG_BIN_DIR: setting({
    group: "paths",
    shown: "newest installed",
    doc: "PostgreSQL's bin directory",
    parse: text,
  }),
  BEYOND_PG_PGBOUNCER: setting({
    group: "paths",
    default: "pgbouncer",
    doc: "PgBouncer executable",
    parse: text,
  }),
  BEYOND_PG_OS_USER: setting({
    group: "paths",
    default: "postgres",
    doc: "OS user postgres runs as when started as root",
    parse: text,
  }),
  BEYOND_PG_RAM_MB: setting({
    group: "resources",
    shown: detected,
    doc: "RAM (MiB) tuning is computed from",
    parse: wholeNumber(64, 1 << 24),
  }),
  BEYOND_PG_VCPUS: setting({
    group: "resources",
    shown: detected,
    doc: "vCPUs tuning is computed from",
    parse: wholeNumber(1, 4096),
  }),
  BEYOND_PG_TLS_DIR: setting({
    group: "tls",
    default: "/run/beyond/tls",
    doc: "platform-provisioned `cert.pem`, `key.pem`, `ca.pem` (may appear later)",
    parse: directory,
  }),
  BEYOND_PG_TLS_NAMES: setting({
    group: "tls",
    default: "",
    doc: "extra DNS names for the self-signed certificate, separated by commas",
    parse: list,
  }),
  BEYOND_PG_TLS_CLIENT_MODE: setting({
    group: "tls",
    default: "allow",
    doc: "PgBouncer's `client_tls_sslmode`: `allow` or `require`",
    parse: choice(["allow", "require"] as const),
  }),
  BEYOND_PG_STOP_TIMEOUT: setting({
    group: "supervision",
    default: "30",
    doc: "seconds for postgres's fast shutdown (then immediate)",
    parse: wholeNumber(1, 3600),
  }),
  BEYOND_PG_HOOK_TIMEOUT: setting({
    group: "supervision",
    default: "60",
    doc: "seconds each hook may run",
    parse: wholeNumber(1, 86400),
  }),
  BEYOND_PG_HOOK_STAGE: external({
    group: "supervision",
    internal: true,
    doc: "set in each hook's environment: the stage it runs in (not read)",
    usedIn: "src/boot/hooks.ts",
  }),
  ...idleSettings,
  ...lockWaitSettings,
  ...hugePageSettings,
  BEYOND_PG_CONTROL_SOCKET: setting({
    group: "control",
    shown: "`<run dir>/control/control.sock`",
    doc: "control RPC Unix socket (0600)",
    parse: absolutePath,
  }),
  BEYOND_PG_CONTROL_VSOCK_PORT: setting({
    group: "control",
    shown: "off; `5000` as PID 1 in a VM",
    doc: "control RPC on vsock (`off` to disable)",
    parse: (v, c) => v === "off" ? undefined : wholeNumber(1, 2 ** 31)(v, c),
  }),
  BEYOND_PG_CONTROL_VSOCK_PEER_CID: setting({
    group: "control",
    default: "2",
    doc: "the only vsock CID served on the control port (2: the host)",
    parse: wholeNumber(0, 2 ** 32 - 2),
  }),
  BEYOND_LOG_VSOCK: setting({
    group: "logs",
    default: "auto",
    doc: "log frames to vsock: `auto` (PID 1 in a VM), `true`, `false`",
    parse: choice(["auto", "true", "false"] as const),
  }),
  BEYOND_LOG_VSOCK_CID: setting({
    group: "logs",
    default: "2",
    doc: "vsock CID of the log receiver (2: the host)",
    parse: wholeNumber(0, 2 ** 32 - 1),
  }),
  BEYOND_LOG_VSOCK_PORT: setting({
    group: "logs",
    default: "5002",
    doc: "vsock port of the log receiver",
    parse: wholeNumber(1, 2 ** 31),
  }),
  BEYOND_PG_LOG_RATE: setting({
    group: "logs",
    default: "500",
    doc: "log lines per second forwarded (sustained)",
    parse: wholeNumber(1, 1e6),
  }),
  BEYOND_PG_LOG_BURST: setting({
    group: "logs",
    default: "1000",
    doc: "log lines forwarded in a burst",
    parse: wholeNumber(1, 1e7),
  }),
  BEYOND_PG_LOG_MAX_LINE: setting({
    group: "logs",
    default: "8192",
    doc: "longer log lines are cut (bytes)",
    parse: wholeNumber(80, 1 << 20),
  }),
  BEYOND_PG_LOG_CAPTURE: setting({
    group: "logs",
    default: "true",
    doc: "`false`: children write to our stderr directly (no prefix, limits or forwarding)",
    parse: bool,
  }),
  BEYOND_PG_LOG_LEVEL: external({
    group: "logs",
    default: "info",
    doc: "lowest level of the supervisor's own lines: `debug`, `info`, `warn`, `error`",
    usedIn: "src/util/log.ts",
  }),
  BEYOND_MMDS_URL: external({
    group: "platform",
    shown: "off; on as PID 1 in a VM",
    doc: "metadata service (Firecracker MMDS) URL; in a VM `http://169.254.169.254`; `off`",
    usedIn: "src/settings/load.ts",
  }),
  BEYOND_PG_PLATFORM: external({
    group: "platform",
    shown: "detected",
    doc: "`vm`, `container` or `process`: overrides detection (tests, unusual setups)",
    usedIn: "src/init/platform.ts",
  }),
  BEYOND_HOSTNAME: external({
    group: "platform",
    shown: "cmdline `hostname=`, else `beyond-pg`",
    doc: "hostname PID 1 sets in a VM",
    usedIn: "src/init/pid1.ts",
  }),
  BEYOND_PG_DATA_DEVICE: external({
    group: "platform",
    default: defaultDataDevice,
    doc: "block device PID 1 mounts on the data root in a VM",
    usedIn: "src/init/pid1.ts",
  }),
  BEYOND_PG_SELF: external({
    group: "platform",
    internal: true,
    shown: "this program",
    doc: "how postgres runs beyond-pg again (the bundle's launcher sets it)",
    usedIn: "src/process/self.ts",
  }),
  ...volumeSettings,
};

export type SettingName = keyof typeof settingsTable;

/** The settings parseSettings reads (the rest are read elsewhere: `usedIn`). */
export type ParsedName = {
  [K in SettingName]: typeof settingsTable[K] extends Setting ? K : never;
}[SettingName];

export type ValueOf<K extends ParsedName> = typeof settingsTable[K] extends Setting<infer T> ? T
  : never;

/** One row as people read it (`beyond-pg settings --json`). */
export interface SettingRow {
  name: string;
  group: string;
  default: string;
  doc: string;
  secret: boolean;
  /** Every other name that sets it: aliases and `_FILE` forms. */
  alsoNames: string[];
  internal: boolean;
  /** Read outside parseSettings, by this module. */
  usedIn?: string;
}

function entry(name: string): Setting | ExternalSetting {
  return (settingsTable as Record<string, Setting | ExternalSetting>)[name]!;
}

/** Every name that sets `name`'s value, its own first. */
export function namesOf(name: string): string[] {
  const s = entry(name);
  const names = [name, ...(s.aliases ?? [])];
  return s.fileForm ? names.flatMap((n) => [n, `${n}_FILE`]) : names;
}

/** The doc line with the other names it answers to. */
function docLine(name: string): string {
  const s = entry(name);
  const also = [
    ...(s.aliases?.length ? [`or ${s.aliases.map((a) => `\`${a}\``).join(", ")}`] : []),
    ...(s.fileForm ? ["`_FILE` forms too"] : []),
  ];
  return also.length ? `${s.doc} (${also.join("; ")})` : s.doc;
}

export function settingRows(): SettingRow[] {
  return Object.keys(settingsTable).map((name) => {
    const s = entry(name);
    return {
      name,
      group: s.group,
      default: shownDefault(s),
      doc: docLine(name),
      secret: s.secret ?? false,
      alsoNames: namesOf(name).slice(1),
      internal: s.internal ?? false,
      ...("usedIn" in s ? { usedIn: s.usedIn } : {}),
    };
  });
}

/** Every name any setting answers to (aliases and `_FILE` forms included). */
export function knownNames(): Set<string> {
  return new Set(Object.keys(settingsTable).flatMap(namesOf));
}

/** Names whose values may hold any character but NUL (secrets; never rendered into a file). */
export function freeTextNames(): Set<string> {
  return new Set(
    Object.keys(settingsTable).filter((n) => entry(n).secret).flatMap((n) => [
      n,
      ...(entry(n).aliases ?? []),
    ]),
  );
}
