/**
 * EFFECT: everything the boot and the supervisor need, gathered once: settings (environment
 * and, when enabled, metadata), the installed binaries and what they support, resources, the
 * extension manifest, and who postgres runs as. Fails before anything is written to disk.
 */
import defaultManifest from "../../conf/extensions.toml" with { type: "text" };
import type { BootContext } from "./boot.ts";
import type { Probe } from "./binaries.ts";
import { probeInstallation, writeProbeCache } from "./binaries.ts";
import { resolveRunAs } from "./users.ts";
import { type Trees, treesFor } from "./trees.ts";
import { exists } from "../util/fs.ts";
import { RootTree } from "../fs/tree.ts";
import { layoutFor } from "../config/layout.ts";
import { parseManifest } from "../config/manifest.ts";
import { effectiveResources } from "../resources/resources.ts";
import { fileSystemContext, loadRawSettings, resolveMmdsUrl } from "../settings/load.ts";
import { parseSettings } from "../settings/settings.ts";
import { typoWarnings } from "../settings/typos.ts";
import { log } from "../util/log.ts";
import { defaultRunDir, defaultSeedDir } from "../settings/defaults.ts";
import { archiveCommandFor } from "../wal/config.ts";
import { initialReplication } from "./replication.ts";

export interface ContextOptions {
  env?: Record<string, string>;
  /** Running as PID 1 inside our own VM (init/platform.ts): metadata comes from MMDS by default. */
  inOwnVm?: boolean;
  mmdsDeadlineMs?: number;
}

export interface Context extends BootContext {
  /** Who may write where (boot/trees.ts); nothing is created until boot. */
  trees: Trees;
  probe: Probe;
  settingsMs: number;
  resourcesSource: string;
}

function readManifest(manifest: { path: string; text: string } | undefined) {
  if (!manifest) return parseManifest(defaultManifest, "conf/extensions.toml (bundled)");
  return parseManifest(manifest.text, manifest.path);
}

export async function buildContext(options: ContextOptions = {}): Promise<Context> {
  const t0 = performance.now();
  const env = options.env ?? Deno.env.toObject();
  const raw = await loadRawSettings({
    major: 0,
    env,
    mmdsUrl: resolveMmdsUrl(env, options.inOwnVm ?? false),
    mmdsDeadlineMs: options.mmdsDeadlineMs,
  });
  const runDir = raw["BEYOND_PG_RUN_DIR"] || defaultRunDir;
  // Nothing in the run dir is trusted (the probe cache below) unless only root can change it.
  if (runDir.startsWith("/")) RootTree.check(runDir, "BEYOND_PG_RUN_DIR");
  const runCache = `${runDir}/probe.json`;
  const { bins, caps, probe } = await probeInstallation({
    binDir: raw["BEYOND_PG_BIN_DIR"] || undefined,
    pgbouncer: raw["BEYOND_PG_PGBOUNCER"] || undefined,
    cacheFiles: [`${raw["BEYOND_PG_SEED_DIR"] || defaultSeedDir}/probe.json`, runCache],
  });
  // Before parsing: a misspelt POSTGRES_PASSWORD explains the error that follows.
  for (const line of typoWarnings(raw)) log.warn(line);
  const settings = parseSettings(raw, fileSystemContext(bins.major));
  const manifest = readManifest(settings.extensionsManifest);
  const runAs = resolveRunAs(settings.osUser);
  const layout = layoutFor(settings);
  // The run dir must be root's (checked before anything in it is trusted or written).
  const trees = treesFor(layout, runAs.switchTo);
  // Only now (settings are valid) may anything be written.
  if (exists(settings.runDir)) writeProbeCache(trees.run, `${settings.runDir}/probe.json`, probe);
  const resources = effectiveResources(settings);
  return {
    trees,
    probe,
    settings,
    layout,
    bins,
    caps,
    runAs,
    manifest,
    ramMb: resources.ramMb,
    vcpus: resources.vcpus,
    resourcesSource: resources.source,
    archiveCommand: archiveCommandFor(layout.runDir),
    replication: initialReplication(settings),
    hookEnv: {
      PGDATA: layout.pgdata,
      PGHOST: layout.socketDir,
      PGPORT: String(settings.directPort),
      PGUSER: "postgres",
      PGDATABASE: settings.database,
      BEYOND_PG_DATA_ROOT: layout.dataRoot,
      BEYOND_PG_RUN_DIR: layout.runDir,
    },
    settingsMs: Math.round(performance.now() - t0),
  };
}
