/**
 * PURE: what one row of the settings table (table.ts) holds: its doc, its default as people
 * see it, whether it is a secret, the other names it answers to, and its parser.
 */
import type { SettingContext } from "./parsers.ts";

/** Display groups, in the order `beyond-pg settings` and README list them. */
export const groupTitles = {
  database: "Database",
  archive: "Archive and S3",
  replication: "Replication and WAL sinks",
  network: "Network",
  paths: "Paths and programs",
  resources: "Resources",
  tls: "TLS",
  supervision: "Supervision",
  control: "Control",
  logs: "Logs",
  platform: "Platform",
} as const;

export type Group = keyof typeof groupTitles;

export interface SettingDoc {
  group: Group;
  /** One line for people; `code` in backticks (README renders it), never a `|`. */
  doc: string;
  /** What "unset" means when it is not a plain value: computed, detected, required. */
  shown?: string;
  /** A secret: never printed, and it may hold any character but NUL. */
  secret?: boolean;
  /** Other names read for the same value, tried in order after the setting's own. */
  aliases?: readonly string[];
  /** `<name>_FILE` (for the name and each alias) names a file holding the value. */
  fileForm?: boolean;
  /** For tests and the build only: left out of README's table. */
  internal?: boolean;
}

/** A setting parseSettings reads. */
export interface Setting<T = unknown> extends SettingDoc {
  /** The value when unset, as text (what the parser then gets). */
  default: string | undefined;
  /** `value` as set (aliases and `_FILE` forms resolved), or undefined when unset. */
  parse(value: string | undefined, ctx: SettingContext): T;
}

/**
 * A setting another module reads straight from the environment (a path that must stay cheap,
 * or PID 1 before settings exist): listed here so that help, README and typo checks know it.
 */
export interface ExternalSetting extends SettingDoc {
  default: string | undefined;
  /** The module that reads it (or, for hooks, sets it); a test checks it names the setting. */
  usedIn: string;
}

type Parse<T> = (value: string, ctx: SettingContext) => T;

/** With a default: the parser always gets a value. */
export function setting<T>(s: SettingDoc & { default: string; parse: Parse<T> }): Setting<T>;
/** Computed when unset (`orElse` may also throw: a required setting). */
export function setting<T>(
  s: SettingDoc & { shown: string; orElse: (ctx: SettingContext) => string; parse: Parse<T> },
): Setting<T>;
/** Optional: undefined when unset. */
export function setting<T>(s: SettingDoc & { parse: Parse<T> }): Setting<T | undefined>;
export function setting<T>(
  s: SettingDoc & { default?: string; orElse?: (ctx: SettingContext) => string; parse: Parse<T> },
): Setting<T | undefined> {
  const { parse, orElse, default: fallback, ...doc } = s;
  return {
    ...doc,
    default: fallback,
    parse(value, ctx) {
      const text = value ?? fallback ?? orElse?.(ctx);
      return text === undefined ? undefined : parse(text, ctx);
    },
  };
}

export function external(s: SettingDoc & { default?: string; usedIn: string }): ExternalSetting {
  return { ...s, default: s.default };
}

/** The default as people read it: a plain value in backticks, else the description. */
export function shownDefault(s: SettingDoc & { default: string | undefined }): string {
  if (s.shown !== undefined) return s.shown;
  if (s.default === undefined || s.default === "") return "—";
  return `\`${s.default}\``;
}
