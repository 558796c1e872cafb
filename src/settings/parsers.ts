/**
 * PURE: the value parsers the settings table (table.ts) refers to. Each takes the text of one
 * setting (as set, or its default) and the context naming it; each problem is a SettingsError
 * naming the setting, the bad value and the fix.
 */
import { OperatorError } from "../util/errors.ts";
import { type ArchiveTarget, readArchiveTarget } from "./archive_target.ts";
import { Secret } from "./secret.ts";

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

const knownTiers: Record<string, string> = {
  primary: "planned (Tier 2), not in this image yet",
  replica: "planned (read replicas), not in this image yet",
};

export function tier(value: string): "single" {
  if (value === "single") return value;
  const known = knownTiers[value];
  throw new SettingsError(
    `BEYOND_PG_TIER=${JSON.stringify(value)} is ${known ?? "not a known tier"}; use "single"`,
  );
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
