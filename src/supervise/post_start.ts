/**
 * EFFECT: work that needs a running server, every boot, idempotent and cheap when nothing
 * changed: the postgres password from settings (as a SCRAM verifier, so no plaintext in SQL),
 * the app database, extensions (CREATE / ALTER ... UPDATE), and the PgBouncer auth entry.
 */
import type { ExtensionSpec } from "../config/manifest.ts";
import type { Secret } from "../settings/secret.ts";
import { buildVerifier, verifierMatches } from "../auth/scram.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

// Type-only: the driver itself is imported lazily, while postgres is still starting.
type Sql = import("postgres").Sql;

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

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

const importDriver = () => import("postgres");
let driver: ReturnType<typeof importDriver> | undefined;

/** Start loading the SQL driver (call early so it overlaps with postgres startup). */
export function preloadDriver(): ReturnType<typeof importDriver> {
  return (driver ??= importDriver());
}

export async function connect(socketDir: string, port: number, database: string): Promise<Sql> {
  const { default: postgres } = await preloadDriver();
  const sql = postgres({
    path: `${socketDir}/.s.PGSQL.${port}`,
    user: "postgres",
    database,
    max: 1,
    prepare: false,
    fetch_types: false, // one round trip less at connect; we use no array types
    connect_timeout: 10,
    idle_timeout: 5,
    onnotice: () => {},
    connection: { application_name: "beyond-pg" },
  });
  // Nothing this session runs is worth logging, and the role change must not be.
  await sql`SELECT set_config('log_statement', 'none', false),
                   set_config('log_min_duration_statement', '-1', false)`;
  return sql;
}

export async function ensureExtensions(
  sql: Sql,
  specs: readonly ExtensionSpec[],
  preload: readonly string[],
  result: PostStartResult,
): Promise<void> {
  const rows = await sql<
    { name: string; default_version: string; installed_version: string | null }[]
  >`
    SELECT name, default_version, installed_version FROM pg_available_extensions
    WHERE name = ANY(string_to_array(${specs.map((s) => s.name).join(",")}, ','))`;
  const available = new Map(rows.map((r) => [r.name, r]));
  for (const spec of specs) {
    const row = available.get(spec.name);
    if (!row || (spec.preload && !preload.includes(spec.library))) {
      result.unavailable.push(spec.name);
      log.warn(`extension ${spec.name} is not available on this server; skipping it`);
      continue;
    }
    try {
      if (row.installed_version === null) {
        await sql.unsafe(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(spec.name)} CASCADE`);
        result.created.push(spec.name);
      } else if (row.installed_version !== row.default_version) {
        await sql.unsafe(`ALTER EXTENSION ${quoteIdent(spec.name)} UPDATE`);
        result.updated.push(`${spec.name} ${row.installed_version}→${row.default_version}`);
      }
    } catch (error) {
      result.failed.push(spec.name);
      log.warn(`extension ${spec.name}: ${errorMessage(error)}; skipping it`);
    }
  }
}

export async function postStart(input: PostStartInput): Promise<PostStartResult> {
  const result: PostStartResult = {
    passwordChanged: false,
    databaseCreated: false,
    created: [],
    updated: [],
    unavailable: [],
    failed: [],
    verifier: "",
  };
  const admin = await connect(input.socketDir, input.port, "postgres");
  const open: Sql[] = [admin];
  try {
    if (input.preload.includes("pg_stat_statements")) {
      await admin`SELECT set_config('pg_stat_statements.track_utility', 'off', false)`;
    }
    const [role] = await admin<{ rolpassword: string | null }[]>`
      SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'`;
    const password = input.password.reveal();
    if (!(await verifierMatches(password, role?.rolpassword ?? null))) {
      await admin.unsafe(
        `ALTER ROLE postgres PASSWORD ${quoteLiteral(await buildVerifier(password))}`,
      );
      result.passwordChanged = true;
    }
    const [db] = await admin`SELECT 1 FROM pg_database WHERE datname = ${input.database}`;
    if (!db) {
      await admin.unsafe(`CREATE DATABASE ${quoteIdent(input.database)}`);
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
    const [after] = await admin<{ rolpassword: string }[]>`
      SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'`;
    result.verifier = after?.rolpassword ?? "";
  } finally {
    // Closing needs no waiting: the session has nothing left to commit.
    for (const s of open) s.end({ timeout: 1 }).catch(() => {});
  }
  return result;
}
