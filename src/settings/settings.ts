/**
 * PURE: metadata + environment (already merged into one record) → typed, validated Settings.
 * Every problem is an OperatorError whose message names the key, the bad value and the fix.
 */
import { OperatorError } from "../util/errors.ts";
import { Secret } from "./secret.ts";

export type Tier = "single";

export interface Settings {
  tier: Tier;
  ephemeral: boolean;
  password: Secret;
  database: string;
  archiveTarget: string | undefined;
  /** BEYOND_PG_ARCHIVE_TARGET=off: archiving switched off on purpose (recorded in PGDATA). */
  archiveOff: boolean;
  /** This cluster takes its prefix's lineage over when it is on a newer timeline. */
  archivePromote: boolean;
  /** archive_timeout in seconds with a target (0: off). */
  archiveTimeoutS: number;
  /** Set when archiveTarget is. */
  s3: S3Settings | undefined;
  walSink: string | undefined;
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
  extensionsManifest: string | undefined;
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

export interface S3Settings {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: Secret;
  caFile: string | undefined;
  codec: "zstd" | "gzip" | "none";
  parallel: number;
}

export interface ParseContext {
  /** Major version of the installed server; shapes the default paths. */
  major: number;
  /** Reads POSTGRES_PASSWORD_FILE; injected so this module stays pure. */
  readFile: (path: string) => string;
}

export class SettingsError extends OperatorError {
  constructor(message: string, cause?: unknown) {
    super(`Cannot start: ${message}`, { cause, exitCode: 2 });
    this.name = "SettingsError";
  }
}

const knownTiers: Record<string, string> = {
  single: "supported",
  primary: "planned (Tier 2), not in this image yet",
  replica: "planned (read replicas), not in this image yet",
};

function present(raw: Record<string, string | undefined>, key: string): string | undefined {
  const value = raw[key];
  return value === undefined || value === "" ? undefined : value;
}

export function parseBool(key: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new SettingsError(`${key}=${JSON.stringify(value)} is not a boolean; use true or false`);
}

function parsePort(key: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) {
    throw new SettingsError(
      `${key}=${JSON.stringify(value)} is not a TCP port; use a number from 1 to 65535`,
    );
  }
  return n;
}

function parsePositive(
  key: string,
  value: string | undefined,
  opts: { min: number; max: number },
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.trim());
  if (!Number.isInteger(n) || n < opts.min || n > opts.max) {
    throw new SettingsError(
      `${key}=${
        JSON.stringify(value)
      } is out of range; use a whole number from ${opts.min} to ${opts.max}`,
    );
  }
  return n;
}

function parsePath(key: string, value: string | undefined, fallback: string): string {
  const path = value ?? fallback;
  if (!path.startsWith("/")) {
    throw new SettingsError(
      `${key}=${JSON.stringify(path)} is not an absolute path; start it with /`,
    );
  }
  return path.length > 1 ? path.replace(/\/+$/, "") : path;
}

function parsePassword(raw: Record<string, string | undefined>, ctx: ParseContext): Secret {
  const inline = present(raw, "POSTGRES_PASSWORD");
  const file = present(raw, "POSTGRES_PASSWORD_FILE");
  if (inline !== undefined && file !== undefined) {
    throw new SettingsError(
      "both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set; set only one of them",
    );
  }
  let value = inline;
  if (file !== undefined) {
    try {
      value = ctx.readFile(file).replace(/\r?\n$/, "");
    } catch (error) {
      throw new SettingsError(
        `POSTGRES_PASSWORD_FILE=${
          JSON.stringify(file)
        } cannot be read; point it at a readable file`,
        error,
      );
    }
    if (value === "") {
      throw new SettingsError(
        `POSTGRES_PASSWORD_FILE=${JSON.stringify(file)} is empty; put a non-empty secret in it`,
      );
    }
  }
  if (value === undefined) {
    throw new SettingsError(
      "POSTGRES_PASSWORD is not set in metadata or environment; set it (or POSTGRES_PASSWORD_FILE) to a non-empty secret",
    );
  }
  if (value.includes("\0")) {
    throw new SettingsError("POSTGRES_PASSWORD contains a NUL byte; choose a password without one");
  }
  return new Secret(value);
}

function parseDatabase(value: string | undefined): string {
  const name = value ?? "postgres";
  if (new TextEncoder().encode(name).length > 63 || name.includes("\0")) {
    throw new SettingsError(
      `POSTGRES_DATABASE=${
        JSON.stringify(name)
      } is not a valid database name; use at most 63 bytes`,
    );
  }
  return name;
}

function parseArchiveTarget(value: string | undefined): string | undefined {
  if (value === undefined || value === "off") return undefined;
  if (!/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/.test(value)) {
    throw new SettingsError(
      `BEYOND_PG_ARCHIVE_TARGET=${
        JSON.stringify(value)
      } is not an S3 target; use s3://bucket/prefix (or off)`,
    );
  }
  return value;
}

function parseUrl(key: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new SettingsError(
      `${key}=${JSON.stringify(value)} is not a URL; use http://host:port`,
      error,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SettingsError(`${key}=${JSON.stringify(value)} is not http(s); use http://host:port`);
  }
  return value;
}

function parseTier(value: string | undefined): Tier {
  const tier = value ?? "single";
  if (tier === "single") return tier;
  const known = knownTiers[tier];
  if (known !== undefined) {
    throw new SettingsError(`BEYOND_PG_TIER=${JSON.stringify(tier)} is ${known}; use "single"`);
  }
  throw new SettingsError(
    `BEYOND_PG_TIER=${JSON.stringify(tier)} is not a known tier; use "single"`,
  );
}

function parseHttp(value: string | undefined): { hostname: string; port: number } | undefined {
  const text = value ?? "127.0.0.1:9188";
  if (text === "off" || text === "false") return undefined;
  const m = text.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  const port = Number(m?.[2]);
  if (!m || !m[1] || port < 1 || port > 65535) {
    throw new SettingsError(
      `BEYOND_PG_HTTP=${JSON.stringify(text)} is not host:port; use e.g. 127.0.0.1:9188 or off`,
    );
  }
  return { hostname: m[1], port };
}

function parseChoice<T extends string>(
  key: string,
  value: string | undefined,
  choices: readonly T[],
  fallback: T,
): T {
  const v = (value ?? fallback).toLowerCase();
  if ((choices as readonly string[]).includes(v)) return v as T;
  throw new SettingsError(
    `${key}=${JSON.stringify(value)} is not one of ${choices.join(", ")}; use one of them`,
  );
}

function secretValue(
  raw: Record<string, string | undefined>,
  ctx: ParseContext,
  keys: string[],
): string | undefined {
  for (const key of keys) {
    const inline = present(raw, key);
    const file = present(raw, `${key}_FILE`);
    if (inline !== undefined && file !== undefined) {
      throw new SettingsError(`both ${key} and ${key}_FILE are set; set only one of them`);
    }
    if (inline !== undefined) return inline;
    if (file !== undefined) {
      try {
        return ctx.readFile(file).replace(/\r?\n$/, "");
      } catch (error) {
        throw new SettingsError(
          `${key}_FILE=${JSON.stringify(file)} cannot be read; point it at a readable file`,
          error,
        );
      }
    }
  }
  return undefined;
}

function parseS3(
  raw: Record<string, string | undefined>,
  ctx: ParseContext,
  target: string | undefined,
) {
  if (!target) return undefined;
  const region = present(raw, "BEYOND_PG_S3_REGION") ?? present(raw, "AWS_REGION") ?? "us-east-1";
  const endpoint = parseUrl("BEYOND_PG_S3_ENDPOINT", present(raw, "BEYOND_PG_S3_ENDPOINT")) ??
    `https://s3.${region}.amazonaws.com`;
  const accessKeyId = secretValue(raw, ctx, ["BEYOND_PG_S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"]);
  const secret = secretValue(raw, ctx, ["BEYOND_PG_S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"]);
  if (!accessKeyId || !secret) {
    throw new SettingsError(
      "BEYOND_PG_ARCHIVE_TARGET is set but S3 credentials are not; set BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY (or their _FILE forms)",
    );
  }
  const codec = present(raw, "BEYOND_PG_ARCHIVE_CODEC") ?? "zstd";
  if (codec !== "zstd" && codec !== "gzip" && codec !== "none") {
    throw new SettingsError(
      `BEYOND_PG_ARCHIVE_CODEC=${JSON.stringify(codec)} is not zstd, gzip or none; use one of them`,
    );
  }
  return {
    endpoint,
    region,
    accessKeyId,
    secretAccessKey: new Secret(secret),
    caFile: present(raw, "BEYOND_PG_S3_CA_FILE"),
    codec: codec as "zstd" | "gzip" | "none",
    parallel:
      parsePositive("BEYOND_PG_ARCHIVE_PARALLEL", present(raw, "BEYOND_PG_ARCHIVE_PARALLEL"), {
        min: 1,
        max: 64,
      }) ?? 4,
  };
}

/** Secrets may hold any character but NUL (they are never rendered into a file). */
const FREE_TEXT = new Set([
  "POSTGRES_PASSWORD",
  "BEYOND_PG_S3_SECRET_KEY",
  "AWS_SECRET_ACCESS_KEY",
]);

/**
 * Values end up in config files, command lines and logs: a newline in one would write extra
 * lines into pgbouncer.ini (a `%include` of anything). No setting but a secret may hold a
 * control character.
 */
function rejectControlCharacters(raw: Record<string, string | undefined>): void {
  for (const [key, value] of Object.entries(raw)) {
    if (value === undefined || FREE_TEXT.has(key) || !/^(BEYOND_|POSTGRES_|AWS_)/.test(key)) {
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

/** PgBouncer's listen_addr: `*`, or a comma-separated list of IP addresses or host names. */
function parseListenAddr(value: string | undefined): string {
  const v = value ?? "0.0.0.0";
  const ok = v === "*" ||
    v.split(",").map((a) => a.trim()).every((a) =>
      /^[0-9.]+$/.test(a) && a.split(".").length === 4 &&
        a.split(".").every((n) => Number(n) <= 255) ||
      /^[0-9A-Fa-f:.]+$/.test(a) && a.includes(":") ||
      /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(a)
    );
  if (!ok) {
    throw new SettingsError(
      `BEYOND_PG_LISTEN_ADDR=${
        JSON.stringify(v)
      } is not an address list; use *, or IP addresses or host names separated by commas`,
    );
  }
  return v;
}

/** Validate everything; the first problem found is thrown. */
export function parseSettings(
  raw: Record<string, string | undefined>,
  ctx: ParseContext,
): Settings {
  rejectControlCharacters(raw);
  const get = (key: string) => present(raw, key);
  const port = parsePort("BEYOND_PG_PORT", get("BEYOND_PG_PORT"), 5432);
  const directPort = parsePort("BEYOND_PG_DIRECT_PORT", get("BEYOND_PG_DIRECT_PORT"), 5433);
  if (port === directPort) {
    throw new SettingsError(
      `BEYOND_PG_PORT and BEYOND_PG_DIRECT_PORT are both ${port}; give them different ports`,
    );
  }
  const stopTimeout = parsePositive("BEYOND_PG_STOP_TIMEOUT", get("BEYOND_PG_STOP_TIMEOUT"), {
    min: 1,
    max: 3600,
  });
  const hookTimeout = parsePositive("BEYOND_PG_HOOK_TIMEOUT", get("BEYOND_PG_HOOK_TIMEOUT"), {
    min: 1,
    max: 86400,
  });
  const tier = parseTier(get("BEYOND_PG_TIER"));
  const runDir = parsePath("BEYOND_PG_RUN_DIR", get("BEYOND_PG_RUN_DIR"), "/run/beyond-pg");
  const socketDir = parsePath(
    "BEYOND_PG_SOCKET_DIR",
    get("BEYOND_PG_SOCKET_DIR"),
    "/var/run/postgresql",
  );
  if (runDir === socketDir) {
    // The socket dir belongs to postgres; our control socket must not live where it can write.
    throw new SettingsError(
      `BEYOND_PG_SOCKET_DIR and BEYOND_PG_RUN_DIR are both ${runDir}; give them different directories`,
    );
  }
  return {
    tier,
    ephemeral: parseBool("BEYOND_VOLUME_EPHEMERAL", get("BEYOND_VOLUME_EPHEMERAL"), false),
    password: parsePassword(raw, ctx),
    database: parseDatabase(get("POSTGRES_DATABASE")),
    archiveTarget: parseArchiveTarget(get("BEYOND_PG_ARCHIVE_TARGET")),
    archiveOff: get("BEYOND_PG_ARCHIVE_TARGET") === "off",
    archivePromote: parseBool("BEYOND_PG_ARCHIVE_PROMOTE", get("BEYOND_PG_ARCHIVE_PROMOTE"), false),
    archiveTimeoutS: parsePositive("BEYOND_PG_ARCHIVE_TIMEOUT", get("BEYOND_PG_ARCHIVE_TIMEOUT"), {
      min: 0,
      max: 86400,
    }) ?? 60,
    s3: parseS3(
      raw,
      ctx,
      get("BEYOND_PG_ARCHIVE_TARGET") === "off" ? undefined : get("BEYOND_PG_ARCHIVE_TARGET"),
    ),
    walSink: parseUrl("BEYOND_PG_WAL_SINK", get("BEYOND_PG_WAL_SINK")),
    dataRoot: parsePath(
      "BEYOND_PG_DATA_ROOT",
      get("BEYOND_PG_DATA_ROOT"),
      `/var/lib/postgresql/${ctx.major}`,
    ),
    runDir,
    socketDir,
    port,
    directPort,
    listenAddr: parseListenAddr(get("BEYOND_PG_LISTEN_ADDR")),
    binDir: get("BEYOND_PG_BIN_DIR"),
    pgbouncerBin: get("BEYOND_PG_PGBOUNCER") ?? "pgbouncer",
    hooksDir: parsePath(
      "BEYOND_PG_HOOKS_DIR",
      get("BEYOND_PG_HOOKS_DIR"),
      "/etc/beyond-pg/hooks",
    ),
    osUser: get("BEYOND_PG_OS_USER") ?? "postgres",
    ramMb: parsePositive("BEYOND_PG_RAM_MB", get("BEYOND_PG_RAM_MB"), { min: 64, max: 1 << 24 }),
    vcpus: parsePositive("BEYOND_PG_VCPUS", get("BEYOND_PG_VCPUS"), { min: 1, max: 4096 }),
    extensionsManifest: get("BEYOND_PG_EXTENSIONS"),
    seedDir: parsePath("BEYOND_PG_SEED_DIR", get("BEYOND_PG_SEED_DIR"), "/usr/lib/beyond-pg/seed"),
    http: parseHttp(get("BEYOND_PG_HTTP")),
    controlSocket: parsePath(
      "BEYOND_PG_CONTROL_SOCKET",
      get("BEYOND_PG_CONTROL_SOCKET"),
      `${runDir}/control/control.sock`,
    ),
    controlVsockPort: get("BEYOND_PG_CONTROL_VSOCK_PORT") === "off"
      ? undefined
      : parsePositive("BEYOND_PG_CONTROL_VSOCK_PORT", get("BEYOND_PG_CONTROL_VSOCK_PORT"), {
        min: 1,
        max: 2 ** 31,
      }),
    controlVsockPeerCid: parsePositive(
      "BEYOND_PG_CONTROL_VSOCK_PEER_CID",
      get("BEYOND_PG_CONTROL_VSOCK_PEER_CID"),
      { min: 0, max: 2 ** 32 - 2 },
    ) ?? 2,
    logVsock: parseChoice(
      "BEYOND_LOG_VSOCK",
      get("BEYOND_LOG_VSOCK"),
      ["auto", "true", "false"] as const,
      "auto",
    ),
    logVsockCid: parsePositive("BEYOND_LOG_VSOCK_CID", get("BEYOND_LOG_VSOCK_CID"), {
      min: 0,
      max: 2 ** 32 - 1,
    }) ?? 2,
    logVsockPort: parsePositive("BEYOND_LOG_VSOCK_PORT", get("BEYOND_LOG_VSOCK_PORT"), {
      min: 1,
      max: 2 ** 31,
    }) ?? 5002,
    logRate: parsePositive("BEYOND_PG_LOG_RATE", get("BEYOND_PG_LOG_RATE"), { min: 1, max: 1e6 }) ??
      500,
    logBurst:
      parsePositive("BEYOND_PG_LOG_BURST", get("BEYOND_PG_LOG_BURST"), { min: 1, max: 1e7 }) ??
        1000,
    logMaxLine: parsePositive("BEYOND_PG_LOG_MAX_LINE", get("BEYOND_PG_LOG_MAX_LINE"), {
      min: 80,
      max: 1 << 20,
    }) ??
      8192,
    logCapture: parseBool("BEYOND_PG_LOG_CAPTURE", get("BEYOND_PG_LOG_CAPTURE"), true),
    tlsDir: parsePath("BEYOND_PG_TLS_DIR", get("BEYOND_PG_TLS_DIR"), "/run/beyond/tls"),
    tlsNames: (get("BEYOND_PG_TLS_NAMES") ?? "").split(",").map((n) => n.trim()).filter(Boolean),
    tlsClientMode: parseChoice(
      "BEYOND_PG_TLS_CLIENT_MODE",
      get("BEYOND_PG_TLS_CLIENT_MODE"),
      ["allow", "require"] as const,
      "allow",
    ),
    stopTimeoutMs: (stopTimeout ?? 30) * 1000,
    hookTimeoutMs: (hookTimeout ?? 60) * 1000,
  };
}
