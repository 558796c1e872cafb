/**
 * EFFECT: find the PostgreSQL and PgBouncer executables and ask them what they are.
 * Everything version-dependent downstream keys off what is found here, never off a constant.
 */
import { parseDescribeConfig, type ServerCaps } from "../config/gate.ts";
import type { RootTree } from "../fs/tree.ts";
import { run } from "../process/spawner.ts";
import { OperatorError } from "../util/errors.ts";
import { sha256Hex } from "../util/crypto.ts";

export interface Binaries {
  binDir: string;
  postgres: string;
  major: number;
  /** "15.20" */
  version: string;
  /** The full version line, e.g. "PostgreSQL 15.20 (Debian 15.20-0+deb12u1)". */
  versionText: string;
  pkglibdir: string;
  /** pg_config's SHAREDIR (extension control files are under extension/); unknown without it. */
  sharedir?: string;
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

/** PostgreSQL's bin directory: the one given, else the newest Debian-style install. */
export function findBinDir(given?: string): string | undefined {
  return given ?? newestDebianBinDir();
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
  /** The serializable probe, for the cache (see probeCachePaths). */
  probe: Probe;
}

/** What the slow part of probing found (spawns); cached, keyed by the binaries' identity. */
export interface Probe {
  key: string;
  versionText: string;
  pkglibdir: string;
  sharedir?: string;
  lz4: boolean;
  pgbouncerVersion: string;
  settings: string[];
}

/** Bumped when Probe gains a field, so an older cache is probed again. */
const PROBE_FORMAT = "probe2";

function identity(paths: string[]): string {
  return PROBE_FORMAT + "|" + paths.map((p) => {
    try {
      const i = Deno.statSync(p);
      return `${p}:${i.size}:${i.mtime?.getTime()}:${i.ino}`;
    } catch {
      return `${p}:missing`;
    }
  }).join("|");
}

function readCache(files: string[], key: string): Probe | undefined {
  for (const file of files) {
    try {
      const probe = JSON.parse(Deno.readTextFileSync(file)) as Probe;
      if (probe.key === key && Array.isArray(probe.settings)) return probe;
    } catch { /* absent or unreadable: probe */ }
  }
  return undefined;
}

/**
 * Store a probe for the next start (best effort: a read-only place is fine); a cache that
 * already holds it is left alone (no write and fsync on every warm start).
 */
export function writeProbeCache(tree: RootTree, file: string, probe: Probe): void {
  try {
    tree.writeIfChanged(file, JSON.stringify(probe) + "\n", 0o644);
  } catch { /* not writable: next start probes again */ }
}

async function spawnProbe(
  postgres: string,
  pgConfig: string | undefined,
  pgbouncer: string,
  key: string,
): Promise<Probe> {
  const [config, describe, bouncer] = await Promise.all([
    pgConfig ? run(pgConfig, []) : run(postgres, ["--version"]),
    run(postgres, ["--describe-config"]),
    run(pgbouncer, ["--version"]),
  ]);
  const fields = pgConfig ? parsePgConfig(config.stdout) : new Map<string, string>();
  const versionText = pgConfig
    ? `(PostgreSQL) ${fields.get("VERSION")?.replace(/^PostgreSQL\s+/, "")}`
    : config.stdout;
  const bouncerVersion = parsePgbouncerVersion(bouncer.stdout + bouncer.stderr);
  if (!bouncerVersion) {
    throw new OperatorError(
      `Cannot start: cannot read the PgBouncer version from ${pgbouncer} --version`,
    );
  }
  return {
    key,
    versionText: versionText.trim(),
    pkglibdir: fields.get("PKGLIBDIR") ?? `${postgres.replace(/\/bin\/postgres$/, "")}/lib`,
    ...(fields.get("SHAREDIR") ? { sharedir: fields.get("SHAREDIR")! } : {}),
    // Without pg_config, assume the common build (PGDG and Debian build with lz4).
    lz4: pgConfig ? (fields.get("CONFIGURE") ?? "").includes("with-lz4") : true,
    pgbouncerVersion: bouncerVersion,
    settings: [...parseDescribeConfig(describe.stdout)],
  };
}

/**
 * Find the executables and learn what they are: `pg_config` (version, pkglibdir, configure
 * flags), `postgres --describe-config`, `pgbouncer --version` — one parallel round, or none
 * when a cache file holds the answers for these exact binaries (this is on the warm-start path).
 */
export async function probeInstallation(
  options: { binDir?: string | undefined; pgbouncer?: string | undefined; cacheFiles?: string[] },
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
  const pgConfig = isFile(`${binDir}/pg_config`) ? `${binDir}/pg_config` : undefined;
  const key = identity([postgres, pgConfig ?? "-", pgbouncer]);
  const probe = readCache(options.cacheFiles ?? [], key) ??
    await spawnProbe(postgres, pgConfig, pgbouncer, key);
  const parsed = parsePostgresVersion(probe.versionText);
  if (!parsed || parsed.major < 15) {
    throw new OperatorError(
      `Cannot start: ${postgres} reports ${
        JSON.stringify(probe.versionText)
      }; beyond-pg needs PostgreSQL 15 to 18`,
      { exitCode: 2 },
    );
  }
  // A major newer than 18 is untested but allowed: every setting is gated on the server.
  const libraries = new Set<string>(); // always live: extension packages come and go
  try {
    for (const entry of Deno.readDirSync(probe.pkglibdir)) {
      if (entry.name.endsWith(".so")) libraries.add(entry.name.slice(0, -3));
    }
  } catch { /* no library dir: nothing preloadable */ }
  const bins: Binaries = {
    binDir,
    postgres,
    major: parsed.major,
    version: parsed.version,
    versionText: probe.versionText.replace(/^\(PostgreSQL\)\s*/, "PostgreSQL "),
    pkglibdir: probe.pkglibdir,
    ...(probe.sharedir ? { sharedir: probe.sharedir } : {}),
    pgbouncer,
    pgbouncerVersion: probe.pgbouncerVersion,
  };
  const caps: ServerCaps = {
    major: parsed.major,
    knownSettings: new Set(probe.settings),
    libraries,
    lz4: probe.lz4,
  };
  return { bins, caps, probe };
}

/**
 * What changes when extension packages are installed, upgraded or removed: a SHA-256 over the
 * extension directory's control files (name, size, mtime, inode) and the directory's own
 * mtime. Undefined when it is not known (no pg_config): then nothing may rely on it.
 */
export async function extensionDirStamp(
  bins: Pick<Binaries, "sharedir">,
): Promise<string | undefined> {
  if (!bins.sharedir) return undefined;
  const dir = `${bins.sharedir}/extension`;
  try {
    const parts = [`${dir} ${Deno.statSync(dir).mtime?.getTime() ?? 0}`];
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
      n.endsWith(".control")
    )
      .sort();
    for (const name of names) {
      const i = Deno.statSync(`${dir}/${name}`);
      parts.push(`${name} ${i.size} ${i.mtime?.getTime() ?? 0} ${i.ino ?? 0}`);
    }
    return `${names.length} control files, sha256 ${await sha256Hex(parts.join("\n"))}`;
  } catch {
    return undefined;
  }
}
