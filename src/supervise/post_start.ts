/**
 * EFFECT: work that needs a running server, every boot, idempotent and cheap when nothing
 * changed: the postgres password from settings (as a SCRAM verifier, so no plaintext in SQL),
 * the app database, extensions (CREATE / ALTER ... UPDATE), and the PgBouncer auth entry.
 */
import type { ExtensionSpec } from "../config/manifest.ts";
import type { Secret } from "../settings/secret.ts";
import { buildVerifier, verifierMatches } from "../auth/scram.ts";
import { PgConnection, quoteIdent, quoteLiteral } from "../pg/client.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export interface PostStartInput {
  socketDir: string;
  port: number;
  password: Secret;
  database: string;
  extensions: readonly ExtensionSpec[];
  preload: readonly string[];
}

export interface PostStartResult {
  passwordChanged: boolean;
  databaseCreated: boolean;
  created: string[];
  updated: string[];
  unavailable: string[];
  failed: string[];
  /** The postgres role's verifier as stored (for PgBouncer's auth file). */
  verifier: string;
}

export { quoteIdent, quoteLiteral };

/** The postgres role over the Unix socket (peer auth), with statement logging off. */
export async function connect(
  socketDir: string,
  port: number,
  database: string,
): Promise<PgConnection> {
  const conn = await PgConnection.connect({
    path: `${socketDir}/.s.PGSQL.${port}`,
    user: "postgres",
    database,
    timeoutMs: 10_000,
  });
  // Nothing this session runs is worth logging, and the role change must not be.
  await conn.query(`SELECT set_config('log_statement', 'none', false),
                           set_config('log_min_duration_statement', '-1', false)`);
  return conn;
}

/** What to do for one manifest extension, given what the server has. */
export type ExtensionStep =
  | { name: string; action: "create" }
  | { name: string; action: "update"; from: string; to: string }
  | { name: string; action: "unavailable" }
  | { name: string; action: "current" };

/** A row of pg_available_extensions. */
export interface AvailableExtension {
  name: string;
  default_version: string | null;
  installed_version: string | null;
}

/**
 * PURE: create what is missing, update what the image now ships newer (an image swap brings
 * a newer package: `ALTER EXTENSION … UPDATE` follows the package's upgrade scripts), and
 * skip what this server does not have, or whose library is not preloaded when it must be.
 */
export function planExtensions(
  specs: readonly ExtensionSpec[],
  preload: readonly string[],
  available: readonly AvailableExtension[],
): ExtensionStep[] {
  const byName = new Map(available.map((r) => [r.name, r]));
  return specs.map((spec): ExtensionStep => {
    const row = byName.get(spec.name);
    if (!row || (spec.preload && !preload.includes(spec.library))) {
      return { name: spec.name, action: "unavailable" };
    }
    if (row.installed_version === null) return { name: spec.name, action: "create" };
    if (row.default_version !== null && row.installed_version !== row.default_version) {
      return {
        name: spec.name,
        action: "update",
        from: row.installed_version,
        to: row.default_version,
      };
    }
    return { name: spec.name, action: "current" };
  });
}

export async function ensureExtensions(
  sql: PgConnection,
  specs: readonly ExtensionSpec[],
  preload: readonly string[],
  result: PostStartResult,
): Promise<void> {
  if (specs.length === 0) return;
  // Names come from the validated manifest (plain identifiers); quoted all the same.
  const names = specs.map((s) => quoteLiteral(s.name)).join(", ");
  const rows = await sql.query(
    `SELECT name, default_version, installed_version FROM pg_available_extensions WHERE name IN (${names})`,
  );
  const available = rows.map((r) => ({
    name: r["name"] ?? "",
    default_version: r["default_version"] ?? null,
    installed_version: r["installed_version"] ?? null,
  }));
  for (const step of planExtensions(specs, preload, available)) {
    try {
      switch (step.action) {
        case "unavailable":
          result.unavailable.push(step.name);
          log.warn(`extension ${step.name} is not available on this server; skipping it`);
          break;
        case "create":
          await sql.query(
            `CREATE EXTENSION IF NOT EXISTS ${quoteIdent(step.name)} CASCADE`,
            120_000,
          );
          result.created.push(step.name);
          break;
        case "update":
          await sql.query(`ALTER EXTENSION ${quoteIdent(step.name)} UPDATE`, 120_000);
          result.updated.push(`${step.name} ${step.from}→${step.to}`);
          break;
        case "current":
          break;
      }
    } catch (error) {
      result.failed.push(step.name);
      log.warn(`extension ${step.name}: ${errorMessage(error)}; skipping it`);
    }
  }
}

/** A result with nothing done yet. */
export function emptyPostStartResult(): PostStartResult {
  return {
    passwordChanged: false,
    databaseCreated: false,
    created: [],
    updated: [],
    unavailable: [],
    failed: [],
    verifier: "",
  };
}

export async function postStart(input: PostStartInput): Promise<PostStartResult> {
  const result = emptyPostStartResult();
  const admin = await connect(input.socketDir, input.port, "postgres");
  const open: PgConnection[] = [admin];
  try {
    if (input.preload.includes("pg_stat_statements")) {
      await admin.query("SELECT set_config('pg_stat_statements.track_utility', 'off', false)");
    }
    // One round trip for everything a warm start needs to know.
    const [state] = await admin.query(`SELECT
        (SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres') AS verifier,
        EXISTS (SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(input.database)}) AS db`);
    const password = input.password.reveal();
    if (!(await verifierMatches(password, state?.["verifier"] ?? null))) {
      await admin.query(
        `ALTER ROLE postgres PASSWORD ${quoteLiteral(await buildVerifier(password))}`,
      );
      result.passwordChanged = true;
    }
    if (state?.["db"] !== "t") {
      await admin.query(`CREATE DATABASE ${quoteIdent(input.database)}`, 120_000);
      result.databaseCreated = true;
    }
    // Extensions, grouped by the database each one belongs in.
    const byDb = new Map<string, ExtensionSpec[]>();
    for (const spec of input.extensions) {
      const db = spec.database ?? input.database;
      byDb.set(db, [...(byDb.get(db) ?? []), spec]);
    }
    for (const [db, specs] of byDb) {
      let sql = admin;
      if (db !== "postgres") {
        sql = await connect(input.socketDir, input.port, db);
        open.push(sql);
      }
      await ensureExtensions(sql, specs, input.preload, result);
    }
    const [after] = await admin.query(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'",
    );
    result.verifier = after?.["rolpassword"] ?? "";
  } finally {
    for (const conn of open) conn.close();
  }
  return result;
}
