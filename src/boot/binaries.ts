/**
 * EFFECT: find the PostgreSQL and PgBouncer executables and ask them what they are.
 * Everything version-dependent downstream keys off what is found here, never off a constant.
 */
import { parseDescribeConfig, type ServerCaps } from "../config/gate.ts";
import { run } from "../process/spawner.ts";
import { OperatorError } from "../util/errors.ts";

export interface Binaries {
  binDir: string;
  postgres: string;
  major: number;
  /** "15.20" */
  version: string;
  pkglibdir: string;
  pgbouncer: string;
  /** "1.18.0" */
  pgbouncerVersion: string;
}

/** PURE: "postgres (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" → { major: 15, version: "15.20" } */
export function parsePostgresVersion(text: string): { major: number; version: string } | undefined {
  const m = text.match(/\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?/);
  if (!m) return undefined;
  return { major: Number(m[1]), version: m[2] === undefined ? m[1]! : `${m[1]}.${m[2]}` };
}

/** PURE: "PgBouncer 1.18.0\nlibevent ..." → "1.18.0" */
export function parsePgbouncerVersion(text: string): string | undefined {
  return text.match(/PgBouncer\s+(\d+\.\d+(?:\.\d+)?)/)?.[1];
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

function newestDebianBinDir(): string | undefined {
  let best: [number, string] | undefined;
  try {
    for (const entry of Deno.readDirSync("/usr/lib/postgresql")) {
      const major = Number(entry.name);
      const dir = `/usr/lib/postgresql/${entry.name}/bin`;
      if (Number.isInteger(major) && isFile(`${dir}/postgres`) && (!best || major > best[0])) {
        best = [major, dir];
      }
    }
  } catch { /* not Debian-style */ }
  return best?.[1];
}

function onPath(name: string): string | undefined {
  if (name.includes("/")) return isFile(name) ? name : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/usr/sbin").split(":")) {
    if (dir && isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  for (const dir of ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"]) {
    if (isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** PURE: `pg_config` output (NAME = value lines) → map. */
export function parsePgConfig(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf(" = ");
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 3).trim());
  }
  return out;
}

export interface Installation {
  bins: Binaries;
  caps: ServerCaps;
}

/**
 * Find the executables and probe them in one parallel round (this is on the warm-start path):
 * `pg_config` (version, pkglibdir, configure flags), `postgres --describe-config`,
 * `pgbouncer --version`.
 */
export async function probeInstallation(
  options: { binDir?: string | undefined; pgbouncer?: string | undefined },
): Promise<Installation> {
  let binDir = options.binDir ?? newestDebianBinDir();
  if (!binDir) {
    const pgConfig = onPath("pg_config");
    if (pgConfig) binDir = (await run(pgConfig, ["--bindir"])).stdout.trim();
  }
  if (!binDir || !isFile(`${binDir}/postgres`)) {
    throw new OperatorError(
      `Cannot start: no PostgreSQL server found${
        options.binDir ? ` in BEYOND_PG_BIN_DIR=${options.binDir}` : ""
      }; install postgresql (15 to 18) or set BEYOND_PG_BIN_DIR to its bin directory`,
      { exitCode: 2 },
    );
  }
  const pgbouncer = onPath(options.pgbouncer ?? "pgbouncer");
  if (!pgbouncer) {
    throw new OperatorError(
      `Cannot start: PgBouncer not found (${
        options.pgbouncer ?? "pgbouncer"
      }); install pgbouncer or set BEYOND_PG_PGBOUNCER`,
      { exitCode: 2 },
    );
  }
  const postgres = `${binDir}/postgres`;
  const hasPgConfig = isFile(`${binDir}/pg_config`);
  const [config, describe, bouncer] = await Promise.all([
    hasPgConfig ? run(`${binDir}/pg_config`, []) : run(postgres, ["--version"]),
    run(postgres, ["--describe-config"]),
    run(pgbouncer, ["--version"]),
  ]);
  const pgConfig = hasPgConfig ? parsePgConfig(config.stdout) : new Map<string, string>();
  const versionText = hasPgConfig
    ? `(PostgreSQL) ${pgConfig.get("VERSION")?.replace(/^PostgreSQL\s+/, "")}`
    : config.stdout;
  const parsed = parsePostgresVersion(versionText);
  if (!parsed || parsed.major < 15) {
    throw new OperatorError(
      `Cannot start: ${postgres} reports ${
        JSON.stringify(versionText.trim())
      }; beyond-pg needs PostgreSQL 15 to 18`,
      { exitCode: 2 },
    );
  }
  // A major newer than 18 is untested but allowed: every setting is gated on the server.
  const bouncerVersion = parsePgbouncerVersion(bouncer.stdout + bouncer.stderr);
  if (!bouncerVersion) {
    throw new OperatorError(
      `Cannot start: cannot read the PgBouncer version from ${pgbouncer} --version`,
    );
  }
  const pkglibdir = pgConfig.get("PKGLIBDIR") ?? `${binDir.replace(/\/bin$/, "")}/lib`;
  const libraries = new Set<string>();
  try {
    for (const entry of Deno.readDirSync(pkglibdir)) {
      if (entry.name.endsWith(".so")) libraries.add(entry.name.slice(0, -3));
    }
  } catch { /* no library dir: nothing preloadable */ }
  const bins: Binaries = {
    binDir,
    postgres,
    major: parsed.major,
    version: parsed.version,
    pkglibdir,
    pgbouncer,
    pgbouncerVersion: bouncerVersion,
  };
  const caps: ServerCaps = {
    major: parsed.major,
    knownSettings: parseDescribeConfig(describe.stdout),
    libraries,
    // Without pg_config, assume the common build (PGDG and Debian build with lz4).
    lz4: hasPgConfig ? (pgConfig.get("CONFIGURE") ?? "").includes("with-lz4") : true,
  };
  return { bins, caps };
}
