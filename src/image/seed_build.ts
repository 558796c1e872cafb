/**
 * EFFECT: build the seed (an image build step, `beyond-pg seed`): initdb with the image's
 * flags, a temporary server, the manifest's extensions created in `postgres`, a clean stop,
 * no WAL. First boot copies it (boot/seed.ts). This runs a postgres and talks to it, so it
 * sits above the supervision floor, not in boot/.
 */
import type { ServerCaps } from "../config/gate.ts";
import { renderHba, renderIdent } from "../config/hba.ts";
import { REPLICATION_ROLE } from "../config/replication_conf.ts";
import type { Manifest } from "../config/manifest.ts";
import { Secret } from "../settings/secret.ts";
import { Child, discardOutput } from "../supervise/child.ts";
import { connect, emptyPostStartResult, ensureExtensions } from "../supervise/post_start.ts";
import { waitReady } from "../supervise/postmaster_pid.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { type Binaries, type Probe, writeProbeCache } from "../boot/binaries.ts";
import { PgTree, RootTree } from "../fs/tree.ts";
import { runInitdb } from "../boot/initdb_cmd.ts";
import { SEED_FORMAT, seedIdentity, type SeedMeta, seedPath } from "../boot/seed.ts";
import type { RunAs } from "../boot/users.ts";

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
    tree.writeAtomic(
      `${data}/pg_hba.conf`,
      renderHba({ replicationRole: REPLICATION_ROLE, peers: [] }),
      0o600,
    );
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
