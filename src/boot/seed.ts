/**
 * The seed: a stopped cluster prepared once (at image build, `beyond-pg seed`) with the
 * image's initdb flags and the manifest's extensions already created in `postgres`. First boot
 * copies it instead of running initdb + CREATE EXTENSION, which is what lets a first boot be
 * faster than a bare initdb. A copy is a different database, so it gets its own system
 * identifier (pg_control patched, checked with pg_controldata, WAL rewritten by pg_resetwal).
 * A seed made for another server version or manifest is ignored.
 */
import type { ServerCaps } from "../config/gate.ts";
import { renderHba, renderIdent } from "../config/hba.ts";
import type { Manifest } from "../config/manifest.ts";
import { run } from "../process/spawner.ts";
import { Secret } from "../settings/secret.ts";
import { Child, discardOutput } from "../supervise/child.ts";
import { connect, emptyPostStartResult, ensureExtensions } from "../supervise/post_start.ts";
import { waitReady } from "../supervise/postmaster_pid.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { type Binaries, type Probe, writeProbeCache } from "./binaries.ts";
import { PgTree, RootTree } from "../fs/tree.ts";
import { exists } from "../util/fs.ts";
import { runInitdb } from "./initdb_cmd.ts";
import { newSystemIdentifier, readSystemIdentifier, withSystemIdentifier } from "./pg_control.ts";
import type { RunAs } from "./users.ts";

const SEED_FORMAT = 1;

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

export interface BuildSeedOptions {
  seedDir: string;
  probe: Probe;
  bins: Binaries;
  caps: ServerCaps;
  manifest: Manifest;
  runAs: RunAs;
}

/** Build (or rebuild) the seed for this server and manifest; returns its directory. */
export async function buildSeed(o: BuildSeedOptions): Promise<string> {
  const owner = o.runAs.switchTo;
  const seeds = RootTree.check(o.seedDir, "BEYOND_PG_SEED_DIR");
  seeds.create(0o755);
  const work = `${o.seedDir}/.build-${crypto.randomUUID().slice(0, 8)}`;
  seeds.ensureDir(work, 0o755);
  seeds.give(work, owner, 0o755);
  const tree = new PgTree(work, owner);
  const data = `${work}/data`;
  const identity = seedIdentity(o.bins, o.manifest, o.caps);
  try {
    const throwaway = new Secret(crypto.randomUUID() + crypto.randomUUID());
    await runInitdb(data, {
      bins: o.bins,
      runAs: o.runAs,
      password: throwaway,
      pwfile: `${work}/pw`,
      tree,
    });
    tree.writeAtomic(`${data}/pg_hba.conf`, renderHba(), 0o600);
    tree.writeAtomic(`${data}/pg_ident.conf`, renderIdent([o.runAs.self]), 0o600);
    const settings: string[] = [];
    for (const ext of o.manifest.extensions) {
      if (!o.caps.libraries.has(ext.library)) continue;
      for (const [k, v] of Object.entries(ext.settings)) settings.push("-c", `${k}=${v}`);
    }
    const server = new Child({
      name: "seed-postgres",
      cmd: o.bins.postgres,
      args: [
        "-D",
        data,
        "-c",
        "listen_addresses=",
        "-c",
        `unix_socket_directories=${work}`,
        "-c",
        "port=5432",
        "-c",
        "archive_mode=off",
        "-c",
        `shared_preload_libraries=${identity.preload.join(",")}`,
        ...settings,
      ],
      env: {},
      cwd: data,
      runAs: owner,
    }, discardOutput);
    try {
      const never = new AbortController();
      if (!(await waitReady(tree, data, server.pid, server.exited, never.signal))) {
        throw new OperatorError(
          `seed build: postgres did not start: ${server.tail().slice(-3).join(" | ")}`,
        );
      }
      const sql = await connect(work, 5432, "postgres");
      const result = emptyPostStartResult();
      try {
        const specs = o.manifest.extensions.filter((e) => identity.extensions.includes(e.name));
        await ensureExtensions(sql, specs, identity.preload, result);
      } finally {
        sql.close();
      }
      log.info(`seed: extensions created: ${result.created.join(", ") || "none"}`);
    } finally {
      if (!(await server.stop("SIGINT", 60_000))) await server.stop("SIGKILL", 5000);
    }
    if (server.exitStatus?.code !== 0) {
      throw new OperatorError("seed build: postgres did not shut down cleanly");
    }
    // WAL is rewritten on every copy: keep only the (empty) directory structure.
    for (const e of tree.list(`${data}/pg_wal`)) {
      if (e.isFile) tree.remove(`${data}/pg_wal/${e.name}`, false);
    }
    tree.remove(`${data}/postmaster.opts`, false);
    const meta: SeedMeta = {
      format: SEED_FORMAT,
      key: identity.key,
      versionText: o.bins.versionText,
      extensions: identity.extensions,
      preload: identity.preload,
      createdAt: new Date().toISOString(),
    };
    tree.writeAtomic(`${work}/seed.json`, JSON.stringify(meta, null, 2) + "\n", 0o644);
    const final = seedPath(o.seedDir, o.bins.major);
    seeds.remove(final);
    seeds.rename(work, final);
    writeProbeCache(seeds, `${o.seedDir}/probe.json`, o.probe); // warm start skips the probe spawns
    return final;
  } catch (error) {
    seeds.remove(work);
    throw error;
  }
}
