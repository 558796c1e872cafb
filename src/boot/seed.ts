/**
 * The seed: a stopped cluster prepared once (at image build, `beyond-pg seed`) with the
 * image's initdb flags and the manifest's extensions already created in `postgres`. First boot
 * copies it instead of running initdb + CREATE EXTENSION, which is what lets a first boot be
 * faster than a bare initdb. A copy is a different database, so it gets its own system
 * identifier (pg_control patched, checked with pg_controldata, WAL rewritten by pg_resetwal).
 * A seed made for another server version or manifest is ignored.
 */
import type { ServerCaps } from "../config/gate.ts";
import type { Manifest } from "../config/manifest.ts";
import { run } from "../process/spawner.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { Binaries } from "./binaries.ts";
import type { PgTree } from "../fs/tree.ts";
import { exists } from "../util/fs.ts";
import { newSystemIdentifier, readSystemIdentifier, withSystemIdentifier } from "./pg_control.ts";
import type { RunAs } from "./users.ts";

export const SEED_FORMAT = 1;

export interface SeedMeta {
  format: number;
  key: string;
  versionText: string;
  extensions: string[];
  preload: string[];
  createdAt: string;
}

export interface Seed {
  dir: string;
  meta: SeedMeta;
}

/** PURE: what a seed must match to be used (server build, extension set, preload list). */
export function seedIdentity(
  bins: Pick<Binaries, "versionText">,
  manifest: Manifest,
  caps: ServerCaps,
) {
  const preload = manifest.extensions.filter((e) => e.preload && caps.libraries.has(e.library)).map(
    (e) => e.library,
  );
  const extensions = manifest.extensions
    .filter((e) => e.create && (e.database ?? "postgres") === "postgres")
    .map((e) => e.name);
  const key = JSON.stringify({ format: SEED_FORMAT, v: bins.versionText, extensions, preload });
  return { key, extensions, preload };
}

export function seedPath(seedDir: string, major: number): string {
  return `${seedDir}/${major}`;
}

/** The seed for this server and manifest, if one exists and matches. */
export function findSeed(
  seedDir: string,
  bins: Binaries,
  manifest: Manifest,
  caps: ServerCaps,
): Seed | undefined {
  const dir = seedPath(seedDir, bins.major);
  let meta: SeedMeta;
  try {
    meta = JSON.parse(Deno.readTextFileSync(`${dir}/seed.json`));
  } catch {
    return undefined;
  }
  if (meta.key !== seedIdentity(bins, manifest, caps).key || !exists(`${dir}/data/PG_VERSION`)) {
    log.info(`seed in ${dir} was made for another server or manifest; not using it`);
    return undefined;
  }
  return { dir, meta };
}

async function controldata(
  bins: Binaries,
  dir: string,
  runAs: RunAs,
): Promise<Map<string, string>> {
  const out = await run(`${bins.binDir}/pg_controldata`, ["-D", dir], { ...runAs.switchTo });
  if (/WARNING|invalid CRC|calculated CRC/i.test(out.stdout + out.stderr)) {
    throw new OperatorError(`pg_controldata reports a damaged pg_control in ${dir}`);
  }
  const fields = new Map<string, string>();
  for (const line of out.stdout.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0) fields.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return fields;
}

/**
 * Copy the seed's cluster into `staging` (an empty directory in the data root) as a new
 * database system. The copy runs as postgres: `staging` is in a directory postgres can write.
 */
export async function copySeed(
  seed: Seed,
  staging: string,
  o: { bins: Binaries; runAs: RunAs; data: PgTree },
): Promise<void> {
  await run("cp", [
    "-R",
    "--preserve=mode,timestamps",
    "--reflink=auto",
    `${seed.dir}/data/.`,
    `${staging}/`,
  ], { ...o.runAs.switchTo });
  const controlPath = `${staging}/global/pg_control`;
  const sysid = newSystemIdentifier();
  const before = o.data.readBytes(controlPath);
  if (!before) throw new OperatorError(`the seed copy has no ${controlPath}`);
  o.data.writeAtomic(controlPath, withSystemIdentifier(before, sysid), 0o600);
  const checked = await controldata(o.bins, staging, o.runAs);
  if (checked.get("Database system identifier") !== String(sysid)) {
    throw new OperatorError(`new system identifier did not read back from ${controlPath}`);
  }
  if (checked.get("Database cluster state") !== "shut down") {
    throw new OperatorError(
      `seed cluster was not shut down cleanly (${checked.get("Database cluster state")})`,
    );
  }
  // New WAL carrying the new identifier (the seed's WAL was left out of it).
  await run(`${o.bins.binDir}/pg_resetwal`, ["-D", staging], { ...o.runAs.switchTo });
  const after = await controldata(o.bins, staging, o.runAs);
  if (after.get("Database system identifier") !== String(sysid)) {
    throw new OperatorError("pg_resetwal changed the system identifier back; not using the seed");
  }
  if (readSystemIdentifier(o.data.readBytes(controlPath)!) !== sysid) {
    throw new OperatorError("pg_control does not hold the new system identifier");
  }
}
