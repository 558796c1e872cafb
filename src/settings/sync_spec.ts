/**
 * PURE: which standbys a commit waits for — PostgreSQL's `synchronous_standby_names` grammar
 * (`ANY k (a, b)`, `FIRST k (a, b)`, `k (a, b)`, or plain names = `FIRST 1`), restricted to
 * names we can also use as replication slot names, and the `synchronous_commit` level.
 */

export type SyncMethod = "ANY" | "FIRST";

/** A commit waits for `k` of `names` (none: it waits for nobody). */
export interface SyncSpec {
  method: SyncMethod;
  k: number;
  names: string[];
}

/** What a commit waits for on a standby; `local` and `off` wait for none. */
export type SyncLevel = "remote_write" | "on" | "remote_apply";
export const SYNC_LEVELS: readonly SyncLevel[] = ["remote_write", "on", "remote_apply"];

/** A standby's name: its application_name and its slot on the primary. */
export const STANDBY_NAME = /^[a-z0-9_]{1,63}$/;

export const NO_SYNC: SyncSpec = { method: "ANY", k: 0, names: [] };

/** A standby name people can use (lower case, digits, underscores); else why not. */
export function standbyNameProblem(name: string): string | undefined {
  if (STANDBY_NAME.test(name)) return undefined;
  return `${JSON.stringify(name)} is not a standby name; use 1 to 63 of a-z, 0-9 and _`;
}

/** A host name turned into a standby name ("db-1.example" → "db_1_example"). */
export function standbyNameFrom(hostname: string): string {
  const name = hostname.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 63);
  return name || "beyond_pg";
}

/** Parse; a string is the problem (one line, with the fix). Empty text: nobody. */
export function parseSyncSpec(text: string): SyncSpec | string {
  const t = text.trim();
  if (t === "" || t === "''") return NO_SYNC;
  const m = t.match(/^(?:(ANY|FIRST)\s+)?(?:(\d+)\s*\(\s*(.*?)\s*\)|\(\s*(.*?)\s*\))$/i);
  let method: SyncMethod = "FIRST";
  let k = 1;
  let list: string;
  if (m) {
    method = (m[1]?.toUpperCase() as SyncMethod | undefined) ?? "FIRST";
    if (m[1] && m[2] === undefined) {
      return `${JSON.stringify(text)} has ${m[1]} without a number; write e.g. ANY 1 (a, b)`;
    }
    k = m[2] === undefined ? 1 : Number(m[2]);
    list = m[3] ?? m[4] ?? "";
  } else {
    if (/[()]/.test(t) || /^(ANY|FIRST)\b/i.test(t)) {
      return `${
        JSON.stringify(text)
      } is not a standby list; write e.g. ANY 1 (a, b) or FIRST 1 (a)`;
    }
    list = t;
  }
  const names = list.split(",").map((n) => n.trim().replace(/^"(.*)"$/, "$1")).filter(Boolean);
  for (const n of names) {
    const problem = standbyNameProblem(n);
    if (problem) return `${JSON.stringify(text)}: ${problem}`;
  }
  if (new Set(names).size !== names.length) {
    return `${JSON.stringify(text)} names a standby twice; name each once`;
  }
  if (names.length === 0) return NO_SYNC;
  if (!Number.isInteger(k) || k < 1 || k > names.length) {
    return `${
      JSON.stringify(text)
    } waits for ${k} of ${names.length} standbys; use 1 to ${names.length}`;
  }
  return { method, k, names };
}

/** The value of synchronous_standby_names ('' when nobody). */
export function formatSyncSpec(s: SyncSpec): string {
  if (s.names.length === 0 || s.k === 0) return "";
  return `${s.method} ${s.k} (${s.names.join(", ")})`;
}

export function parseSyncLevel(text: string): { level: SyncLevel } | { problem: string } {
  const v = text.trim().toLowerCase();
  if ((SYNC_LEVELS as readonly string[]).includes(v)) return { level: v as SyncLevel };
  return {
    problem: `${JSON.stringify(text)} is not a synchronous_commit level here; use ${
      SYNC_LEVELS.join(", ")
    }`,
  };
}
