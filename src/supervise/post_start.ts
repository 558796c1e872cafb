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
import { REPLICATION_ROLE } from "../config/replication_conf.ts";
import { log } from "../util/log.ts";

export interface PostStartInput {
  socketDir: string;
  port: number;
  password: Secret;
  database: string;
  extensions: readonly ExtensionSpec[];
  preload: readonly string[];
  /** The replication role's password (replicas, sinks, pg_rewind), when configured. */
  replicationPassword?: Secret | undefined;
  /** Physical slots the primary keeps (one per WAL sink). */
  slots?: readonly string[];
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
  /** A hot standby: nothing was written (the primary's catalog is replicated here). */
  standby: boolean;
  replicationRole: "created" | "password set" | undefined;
  slotsCreated: string[];
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
  // Our own writes (roles, databases, extensions) never wait for a synchronous standby: a
  // primary configured with standbys that are not there yet must still finish booting.
  await conn.query(`SELECT set_config('log_statement', 'none', false),
                           set_config('log_min_duration_statement', '-1', false),
                           set_config('synchronous_commit', 'local', false)`);
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
    standby: false,
    replicationRole: undefined,
    slotsCreated: [],
  };
}

export async function postStart(input: PostStartInput): Promise<PostStartResult> {
  const result = emptyPostStartResult();
  const admin = await connect(input.socketDir, input.port, "postgres");
  const open: PgConnection[] = [admin];
  try {
    // One round trip for everything a warm start needs to know (and, with pg_stat_statements,
    // its utility tracking off first: the role change must not be recorded).
    const untracked = input.preload.includes("pg_stat_statements")
      ? "set_config('pg_stat_statements.track_utility', 'off', false) AS untracked, "
      : "";
    const [state] = await admin.query(`SELECT ${untracked}
        (SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres') AS verifier,
        EXISTS (SELECT 1 FROM pg_database WHERE datname = ${quoteLiteral(input.database)}) AS db,
        pg_is_in_recovery() AS standby`);
    const password = input.password.reveal();
    if (state?.["standby"] === "t") {
      // A hot standby is read-only: roles, databases and extensions come from the primary.
      result.standby = true;
      result.verifier = state["verifier"] ?? "";
      if (!(await verifierMatches(password, state["verifier"] ?? null))) {
        log.warn(
          "POSTGRES_PASSWORD here differs from the primary's postgres password, which is the one that applies on a replica; set the same value in both",
        );
      }
      return result;
    }
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
    await ensureReplicationRole(admin, input, result);
    if (result.passwordChanged) {
      const [after] = await admin.query(
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'",
      );
      result.verifier = after?.["rolpassword"] ?? "";
    } else {
      // Unchanged (a warm boot): the verifier read above is the stored one; no round trip.
      result.verifier = state?.["verifier"] ?? "";
    }
  } finally {
    for (const conn of open) conn.close();
  }
  return result;
}

/** The grants pg_rewind's source connection needs (instead of a superuser). */
const REWIND_FUNCTIONS = [
  "pg_catalog.pg_ls_dir(text, boolean, boolean)",
  "pg_catalog.pg_stat_file(text, boolean)",
  "pg_catalog.pg_read_binary_file(text)",
  "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
];

/**
 * On a primary: the replication role (login, replication, nothing else; its password as a
 * verifier, set only when it changed), the functions pg_rewind reads with, and a physical slot
 * for each WAL sink.
 */
async function ensureReplicationRole(
  admin: PgConnection,
  input: PostStartInput,
  result: PostStartResult,
): Promise<void> {
  const role = REPLICATION_ROLE;
  if (input.replicationPassword) {
    const [row] = await admin.query(
      `SELECT rolpassword FROM pg_authid WHERE rolname = ${quoteLiteral(role)}`,
    );
    const pw = input.replicationPassword.reveal();
    if (!row) {
      await admin.query(
        `CREATE ROLE ${
          quoteIdent(role)
        } WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD ${
          quoteLiteral(await buildVerifier(pw))
        }`,
      );
      result.replicationRole = "created";
    } else if (!(await verifierMatches(pw, row["rolpassword"] ?? null))) {
      await admin.query(
        `ALTER ROLE ${quoteIdent(role)} WITH LOGIN REPLICATION PASSWORD ${
          quoteLiteral(await buildVerifier(pw))
        }`,
      );
      result.replicationRole = "password set";
    }
    const missing = await admin.query(
      `SELECT f FROM unnest(ARRAY[${REWIND_FUNCTIONS.map(quoteLiteral).join(", ")}]) AS f
       WHERE NOT has_function_privilege(${quoteLiteral(role)}, f, 'EXECUTE')`,
    );
    for (const m of missing) {
      await admin.query(`GRANT EXECUTE ON FUNCTION ${m["f"]} TO ${quoteIdent(role)}`);
    }
    // A rewind against a just promoted primary asks it for a checkpoint (upstream.ts).
    const [ck] = await admin.query(
      `SELECT pg_has_role(${quoteLiteral(role)}, 'pg_checkpoint', 'MEMBER') AS member`,
    );
    if (ck?.["member"] === "f") {
      await admin.query(`GRANT pg_checkpoint TO ${quoteIdent(role)}`);
    }
  }
  if (input.slots?.length) {
    const rows = await admin.query("SELECT slot_name FROM pg_replication_slots");
    const have = new Set(rows.map((r) => r["slot_name"]));
    for (const name of input.slots) {
      if (have.has(name)) continue;
      await admin.query(`SELECT pg_create_physical_replication_slot(${quoteLiteral(name)}, true)`);
      result.slotsCreated.push(name);
    }
  }
}
