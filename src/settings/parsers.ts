/**
 * PURE: the value parsers the settings table (table.ts) refers to. Each takes the text of one
 * setting (as set, or its default) and the context naming it; each problem is a SettingsError
 * naming the setting, the bad value and the fix.
 */
import { OperatorError } from "../util/errors.ts";
import { type ArchiveTarget, readArchiveTarget } from "./archive_target.ts";
import { Secret } from "./secret.ts";
import {
  parseSyncLevel,
  parseSyncSpec,
  standbyNameProblem,
  type SyncLevel,
  type SyncSpec,
} from "./sync_spec.ts";

export interface ParseContext {
  /** Major version of the installed server; shapes the default paths. */
  major: number;
  /** Reads file-valued settings (passwords, the S3 CA, the manifest); injected to stay pure. */
  readFile: (path: string) => string;
  /**
   * What is at `path`: undefined when nothing is (it may throw for other errors). Without it
   * a directory setting is checked for its form only (unit tests).
   */
  stat?: (path: string) => { isDirectory: boolean } | undefined;
  /** This machine's host name (default standby names); none: "beyond_pg". */
  hostname?: () => string;
}

/** What a parser gets besides the value: which setting it is reading. */
export interface SettingContext extends ParseContext {
  name: string;
}

export class SettingsError extends OperatorError {
  constructor(message: string, cause?: unknown) {
    super(`Cannot start: ${message}`, { cause, exitCode: 2 });
    this.name = "SettingsError";
  }
}

function shown(name: string, value: string): string {
  return `${name}=${JSON.stringify(value)}`;
}

export function text(value: string): string {
  return value;
}

export function bool(value: string, c: SettingContext): boolean {
  const v = value.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw new SettingsError(`${shown(c.name, value)} is not a boolean; use true or false`);
}

export function port(value: string, c: SettingContext): number {
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 65535) {
    throw new SettingsError(
      `${shown(c.name, value)} is not a TCP port; use a number from 1 to 65535`,
    );
  }
  return n;
}

/** A whole number from `min` to `max`. */
export function wholeNumber(min: number, max: number) {
  return (value: string, c: SettingContext): number => {
    const n = Number(value.trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new SettingsError(
        `${shown(c.name, value)} is out of range; use a whole number from ${min} to ${max}`,
      );
    }
    return n;
  };
}

/** An absolute path, without trailing slashes. */
export function absolutePath(value: string, c: SettingContext): string {
  if (!value.startsWith("/")) {
    throw new SettingsError(`${shown(c.name, value)} is not an absolute path; start it with /`);
  }
  return value.length > 1 ? value.replace(/\/+$/, "") : value;
}

/** One of `choices`, case-insensitively. */
export function choice<T extends string>(choices: readonly T[]) {
  return (value: string, c: SettingContext): T => {
    const v = value.toLowerCase();
    if ((choices as readonly string[]).includes(v)) return v as T;
    throw new SettingsError(
      `${shown(c.name, value)} is not one of ${choices.join(", ")}; use one of them`,
    );
  };
}

export function httpUrl(value: string, c: SettingContext): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch (error) {
    throw new SettingsError(`${shown(c.name, value)} is not a URL; use http://host:port`, error);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SettingsError(`${shown(c.name, value)} is not http(s); use http://host:port`);
  }
  return value;
}

/** Comma-separated words, blanks dropped. */
export function list(value: string): string[] {
  return value.split(",").map((n) => n.trim()).filter(Boolean);
}

export function password(value: string): Secret {
  if (value.includes("\0")) {
    throw new SettingsError("POSTGRES_PASSWORD contains a NUL byte; choose a password without one");
  }
  return new Secret(value);
}

export function passwordMissing(): never {
  throw new SettingsError(
    "POSTGRES_PASSWORD is not set in metadata or environment; set it (or POSTGRES_PASSWORD_FILE) to a non-empty secret",
  );
}

export function secret(value: string): Secret {
  return new Secret(value);
}

export function database(value: string): string {
  if (new TextEncoder().encode(value).length > 63 || value.includes("\0")) {
    throw new SettingsError(
      `POSTGRES_DATABASE=${
        JSON.stringify(value)
      } is not a valid database name; use at most 63 bytes`,
    );
  }
  return value;
}

export type Tier = "single" | "primary" | "replica";

export function tier(value: string): Tier {
  if (value === "single" || value === "primary" || value === "replica") return value;
  throw new SettingsError(
    `BEYOND_PG_TIER=${JSON.stringify(value)} is not a known tier; use single, primary or replica`,
  );
}

/** `host:port` (a name, an IPv4 address or a bracketed IPv6 address). */
export function hostPort(value: string, c: SettingContext): { host: string; port: number } {
  const m = value.trim().match(
    /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9][A-Za-z0-9.-]{0,252})):(\d{1,5})$/,
  );
  const n = Number(m?.[3]);
  if (!m || n < 1 || n > 65535) {
    throw new SettingsError(
      `${shown(c.name, value)} is not host:port; use e.g. 10.0.0.5:5433 or [fd00::5]:5433`,
    );
  }
  return { host: m[1] ?? m[2]!, port: n };
}

/** Addresses in CIDR form (a bare address is one host), separated by commas. */
export function cidrList(value: string, c: SettingContext): string[] {
  const out: string[] = [];
  for (const item of list(value)) {
    const [addr, bits, more] = item.split("/");
    const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(addr ?? "") &&
      addr!.split(".").every((o) => Number(o) <= 255);
    const v6 = /^[0-9A-Fa-f:.]+$/.test(addr ?? "") && (addr ?? "").includes(":");
    const max = v4 ? 32 : 128;
    const b = bits === undefined ? max : Number(bits);
    if ((!v4 && !v6) || more !== undefined || !Number.isInteger(b) || b < 0 || b > max) {
      throw new SettingsError(
        `${shown(c.name, value)}: ${
          JSON.stringify(item)
        } is not an address or CIDR block; use e.g. 10.0.0.0/24, 10.0.0.7 or fd00::/64`,
      );
    }
    out.push(`${addr}/${b}`);
  }
  return out;
}

/** postgres's listen_addresses: `*` or addresses/host names separated by commas. */
export function listenAddresses(value: string, c: SettingContext): string {
  try {
    return listenAddr(value);
  } catch {
    throw new SettingsError(
      `${shown(c.name, value)} is not an address list; use *, or addresses separated by commas`,
    );
  }
}

export function syncStandbys(value: string, c: SettingContext): SyncSpec {
  const s = parseSyncSpec(value);
  if (typeof s === "string") throw new SettingsError(`${c.name}: ${s}`);
  return s;
}

export function syncLevel(value: string, c: SettingContext): SyncLevel {
  const s = parseSyncLevel(value);
  if ("problem" in s) throw new SettingsError(`${c.name}: ${s.problem}`);
  return s.level;
}

export function standbyName(value: string, c: SettingContext): string {
  const problem = standbyNameProblem(value);
  if (problem) throw new SettingsError(`${c.name}: ${problem}`);
  return value;
}

/** A WAL sink: its name (its slot and standby name) and its URL. */
export interface SinkRef {
  name: string;
  url: string;
}

/** `name=http(s)://host:port` separated by commas. */
export function walSinks(value: string, c: SettingContext): SinkRef[] {
  const out: SinkRef[] = [];
  for (const item of list(value)) {
    const eq = item.indexOf("=");
    const name = item.slice(0, eq).trim();
    const url = item.slice(eq + 1).trim();
    let ok = eq > 0 && standbyNameProblem(name) === undefined;
    try {
      const u = new URL(url);
      ok &&= (u.protocol === "http:" || u.protocol === "https:") && u.pathname === "/" &&
        !u.search && !u.username;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new SettingsError(
        `${shown(c.name, value)}: ${
          JSON.stringify(item)
        } is not name=URL; use e.g. s1=https://10.0.0.8:7432 (names: a-z, 0-9, _)`,
      );
    }
    if (out.some((s) => s.name === name)) {
      throw new SettingsError(`${shown(c.name, value)} names sink ${name} twice; name each once`);
    }
    out.push({ name, url: url.replace(/\/$/, "") });
  }
  return out;
}

/** `off` (switched off on purpose) or `s3://bucket[/prefix]`. */
export function archiveTarget(value: string): ArchiveTarget | "off" {
  if (value === "off") return "off";
  const target = readArchiveTarget(value);
  if (!target) {
    throw new SettingsError(
      `BEYOND_PG_ARCHIVE_TARGET=${
        JSON.stringify(value)
      } is not an S3 target; use s3://bucket/prefix (or off)`,
    );
  }
  return target;
}

export function http(value: string): { hostname: string; port: number } | undefined {
  if (value === "off" || value === "false") return undefined;
  const m = value.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  const n = Number(m?.[2]);
  if (!m || !m[1] || n < 1 || n > 65535) {
    throw new SettingsError(
      `BEYOND_PG_HTTP=${JSON.stringify(value)} is not host:port; use e.g. 127.0.0.1:9188 or off`,
    );
  }
  return { hostname: m[1], port: n };
}

/** Where a server listens: `host:port`. */
export function listenHostPort(
  value: string,
  c: SettingContext,
): { hostname: string; port: number } {
  const m = value.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  const n = Number(m?.[2]);
  if (!m || !m[1] || n < 1 || n > 65535) {
    throw new SettingsError(`${shown(c.name, value)} is not host:port; use e.g. 127.0.0.1:7432`);
  }
  return { hostname: m[1], port: n };
}

/** PgBouncer's listen_addr: `*`, or a comma-separated list of IP addresses or host names. */
export function listenAddr(value: string): string {
  const ok = value === "*" ||
    value.split(",").map((a) => a.trim()).every((a) =>
      /^[0-9.]+$/.test(a) && a.split(".").length === 4 &&
        a.split(".").every((n) => Number(n) <= 255) ||
      /^[0-9A-Fa-f:.]+$/.test(a) && a.includes(":") ||
      /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(a)
    );
  if (!ok) {
    throw new SettingsError(
      `BEYOND_PG_LISTEN_ADDR=${
        JSON.stringify(value)
      } is not an address list; use *, or IP addresses or host names separated by commas`,
    );
  }
  return value;
}

/** A PEM CA certificate file, read now: its path and its content. */
export function pemFile(path: string, c: SettingContext): { path: string; pem: string } {
  let pem: string;
  try {
    pem = c.readFile(path);
  } catch (error) {
    throw new SettingsError(
      `${shown(c.name, path)} cannot be read; point it at a readable PEM CA certificate`,
      error,
    );
  }
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new SettingsError(
      `${
        shown(c.name, path)
      } holds no PEM certificate (no -----BEGIN CERTIFICATE----- line); point it at a PEM CA certificate`,
    );
  }
  return { path, pem };
}

/** A directory that may not exist yet (the platform provides it later); if it does, a directory. */
export function directory(value: string, c: SettingContext): string {
  const path = absolutePath(value, c);
  let found: { isDirectory: boolean } | undefined;
  try {
    found = c.stat?.(path);
  } catch (error) {
    throw new SettingsError(
      `${
        shown(c.name, value)
      } cannot be checked; make it a readable directory (or leave it absent)`,
      error,
    );
  }
  if (found && !found.isDirectory) {
    throw new SettingsError(
      `${shown(c.name, value)} is not a directory; point it at a directory (or leave it absent)`,
    );
  }
  return path;
}

/** A text file, read now: its path and its content. */
export function textFile(what: string) {
  return (value: string, c: SettingContext): { path: string; text: string } => {
    try {
      return { path: value, text: c.readFile(value) };
    } catch (error) {
      throw new SettingsError(
        `${shown(c.name, value)} cannot be read; point it at a readable ${what}`,
        error,
      );
    }
  };
}

export function codec(value: string): "zstd" | "gzip" | "none" {
  if (value === "zstd" || value === "gzip" || value === "none") return value;
  throw new SettingsError(
    `BEYOND_PG_ARCHIVE_CODEC=${JSON.stringify(value)} is not zstd, gzip or none; use one of them`,
  );
}

/** Server-side encryption as configured (the S3 client's `Sse`; an SSE-C key read now). */
export type SseSetting =
  | { kind: "aes256" }
  | { kind: "kms"; keyId: string }
  | { kind: "c"; keyFile: string; key: Secret };

/** A 256-bit key as base64 or hex text (`openssl rand -base64 32`) → base64. */
export function key256(text: string): string | undefined {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    return btoa(String.fromCharCode(...t.match(/../g)!.map((h) => parseInt(h, 16))));
  }
  if (/^[A-Za-z0-9+/]{43}=$/.test(t)) return t;
  return undefined;
}

/** `aes256`, `kms:<key id>` or `c:<key file>` (BEYOND_PG_S3_SSE). */
export function sse(value: string, c: SettingContext): SseSetting {
  const v = value.trim();
  if (v.toLowerCase() === "aes256") return { kind: "aes256" };
  if (v.startsWith("kms:") && v.length > 4) return { kind: "kms", keyId: v.slice(4) };
  if (v.startsWith("c:") && v.length > 2) {
    const keyFile = v.slice(2);
    let text: string;
    try {
      text = c.readFile(keyFile);
    } catch (error) {
      throw new SettingsError(
        `${shown(c.name, value)}: the key file cannot be read; point it at a readable file`,
        error,
      );
    }
    const key = key256(text);
    if (!key) {
      throw new SettingsError(
        `${
          shown(c.name, value)
        }: the key file does not hold a 256-bit key as base64 or hex; make one with \`openssl rand -base64 32\``,
      );
    }
    return { kind: "c", keyFile, key: new Secret(key) };
  }
  throw new SettingsError(
    `${shown(c.name, value)} is not aes256, kms:<key id> or c:<key file>; use one of them`,
  );
}

/** An S3 storage class (STANDARD, STANDARD_IA, …): capitals, digits and underscores. */
export function storageClass(value: string, c: SettingContext): string {
  const v = value.trim().toUpperCase();
  if (/^[A-Z][A-Z0-9_]{0,63}$/.test(v)) return v;
  throw new SettingsError(
    `${shown(c.name, value)} is not a storage class name; use one like STANDARD or STANDARD_IA`,
  );
}

/** One or more 256-bit keys (base64 or hex), separated by commas, spaces or newlines. */
export function keyList(value: string, c: SettingContext): Secret[] {
  const words = value.split(/[\s,]+/).filter(Boolean);
  const keys = words.map(key256);
  const bad = keys.findIndex((k) => k === undefined);
  if (!words.length || bad !== -1) {
    throw new SettingsError(
      `${c.name}: ${
        words.length ? `key ${bad + 1} of ${words.length}` : "the value"
      } is not a 256-bit key as base64 or hex; make one with \`openssl rand -base64 32\``,
    );
  }
  return keys.map((k) => new Secret(k!));
}

/** The replication role's password: it goes into a pgpass line, so no line break and no NUL. */
export function replicationPassword(value: string, c: SettingContext): Secret {
  // deno-lint-ignore no-control-regex
  if (/[\x00\r\n]/.test(value)) {
    throw new SettingsError(
      `${c.name} contains a line break or NUL byte; choose a password without one`,
    );
  }
  return new Secret(value);
}
