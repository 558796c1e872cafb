/**
 * EFFECT: boot-time setup, idempotent (also `beyond-pg boot`): data directory (first boot if
 * empty), layered configuration, pre-start hooks. Everything that does not need a running
 * server; the supervisor does the rest.
 */
import { fsSpace } from "../../ffi/mod.ts";
import type { ServerCaps } from "../config/gate.ts";
import type { Layout } from "../config/layout.ts";
import type { Manifest } from "../config/manifest.ts";
import { type ConfigPlan, planConfig } from "../config/plan.ts";
import { withIncludeDir } from "../config/postgresql_conf.ts";
import type { Settings } from "../settings/settings.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { Binaries } from "./binaries.ts";
import { runHooks } from "./hooks.ts";
import { makeTrees, treeFor, type Trees } from "./trees.ts";
import { clearMarkers, firstBoot } from "./initdb.ts";
import { findSeed } from "./seed.ts";
import { checkWalLink } from "./wal_link.ts";
import { resolveTls, type TlsMaterial, type TlsOptions } from "../tls/material.ts";
import type { RunAs } from "./users.ts";
import { installPassfile, type ReplicationNow, replicationPlanInput } from "./replication.ts";
import { cloneInto, prepareStandby, type ReplicaBootHooks } from "./replica.ts";
import { REPLICATION_ROLE } from "../config/replication_conf.ts";
import { fetchGap, type GapResult } from "./gap_fetch.ts";

export interface BootContext {
  /** Who may write where: every file we write goes through one of these. */
  trees: Trees;
  settings: Settings;
  layout: Layout;
  bins: Binaries;
  caps: ServerCaps;
  runAs: RunAs;
  manifest: Manifest;
  ramMb: number;
  vcpus: number;
  /** Shell command postgres runs per WAL segment: "<self> archive %p %f". */
  archiveCommand: string;
  /** Non-secret environment for hooks and children. */
  hookEnv: Record<string, string>;
  /** What this node is in replication now (boot/replication.ts); RPCs change it. */
  replication: ReplicationNow;
  /** A fork's first boot (lifecycle/fork.ts): a self-signed certificate with other names is renewed. */
  newFork?: boolean;
}

export interface BootResult {
  tls: TlsMaterial | undefined;
  tlsProblem: string | undefined;
  initdbMs: number;
  configMs: number;
  hooksMs: number;
  firstBoot: boolean;
  plan: ConfigPlan;
  /** Paths rewritten this boot (unchanged files are not touched). */
  changed: string[];
  /** The gap fetch from the WAL sinks (step 4a), when sinks are configured. */
  gap?: GapResult;
}

export function checkMajor(trees: Trees, layout: Layout, major: number): void {
  let text: string | undefined;
  try {
    text = trees.data.readText(`${layout.pgdata}/PG_VERSION`)?.trim();
  } catch { /* unreadable: handled below */ }
  if (text === undefined) return;
  if (!/^\d+$/.test(text)) {
    throw new OperatorError(
      `Cannot start: ${layout.pgdata}/PG_VERSION is unreadable (${
        JSON.stringify(text.slice(0, 20))
      }); the cluster is damaged: restore it from a backup or a snapshot`,
      { exitCode: 2 },
    );
  }
  if (text !== String(major)) {
    throw new OperatorError(
      `Cannot start: ${layout.pgdata} holds a PostgreSQL ${text} cluster but this image runs PostgreSQL ${major}; upgrade the data with pg_upgrade (a maintenance VM with both versions) or boot an image for ${text}`,
      { exitCode: 2 },
    );
  }
}

/**
 * Apply a config plan (every file goes through the tree it lives in: PGDATA's and PgBouncer's
 * are postgres's); returns the paths that changed.
 */
export function applyPlan(plan: ConfigPlan, trees: Trees): string[] {
  const changed: string[] = [];
  for (const file of plan.files) {
    if (treeFor(trees, file.path).writeIfChanged(file.path, file.content, file.mode)) {
      changed.push(file.path);
    }
  }
  for (const file of plan.createOnce) {
    if (treeFor(trees, file.path).createOnce(file.path, file.content, file.mode)) {
      changed.push(file.path);
    }
  }
  for (const path of plan.remove) if (treeFor(trees, path).remove(path)) changed.push(path);
  return changed;
}

/**
 * Write the whole configuration for this TLS material: the plan, then the include line in the
 * stock postgresql.conf. Returns the paths that changed (boot, reload and TLS rotation).
 */
export function applyConfig(ctx: BootContext, tls: TlsMaterial | undefined): string[] {
  const changed = applyPlan(planFor(ctx, tls), ctx.trees);
  if (applyIncludeDir(ctx.trees, ctx.layout)) changed.push(`${ctx.layout.pgdata}/postgresql.conf`);
  return changed;
}

/** `include_dir` appended to the stock postgresql.conf (once); true when it was written. */
export function applyIncludeDir(trees: Trees, layout: Layout): boolean {
  const confPath = `${layout.pgdata}/postgresql.conf`;
  const stock = trees.data.readText(confPath) ?? "";
  return trees.data.writeIfChanged(confPath, withIncludeDir(stock, layout.confDir), 0o600);
}

/** The data volume's size in MB (undefined when it cannot be told). */
function volumeMb(ctx: BootContext): number | undefined {
  try {
    return Math.floor(fsSpace(ctx.layout.dataRoot).totalBytes / 2 ** 20);
  } catch {
    return undefined;
  }
}

export function planFor(ctx: BootContext, tls: TlsMaterial | undefined): ConfigPlan {
  return planConfig({
    volumeMb: volumeMb(ctx),
    tls,
    settings: ctx.settings,
    layout: ctx.layout,
    ramMb: ctx.ramMb,
    vcpus: ctx.vcpus,
    caps: ctx.caps,
    manifest: ctx.manifest,
    pgbouncerVersion: ctx.bins.pgbouncerVersion,
    archiveCommand: ctx.archiveCommand,
    identUsers: [ctx.runAs.self, ctx.runAs.user.name],
    replication: replicationPlanInput(ctx),
  });
}

export function tlsOptions(ctx: BootContext): TlsOptions {
  return {
    data: ctx.trees.data,
    run: ctx.trees.run,
    stateDir: ctx.layout.stateDir,
    platformDir: ctx.settings.tlsDir,
    runDir: ctx.layout.runDir,
    hostname: Deno.hostname(),
    extraNames: ctx.settings.tlsNames,
    owner: ctx.runAs.switchTo,
    ...(ctx.newFork ? { renewOnNewNames: true } : {}),
  };
}

/** Everything postgres needs on disk, except for running hooks. */
export async function prepareData(
  ctx: BootContext,
  hooks: ReplicaBootHooks = {},
): Promise<Omit<BootResult, "hooksMs">> {
  const { layout, runAs, trees } = ctx;
  makeTrees(trees);
  installPassfile(trees, layout, {
    user: REPLICATION_ROLE,
    password: ctx.settings.replication.password?.reveal(),
    owner: runAs.switchTo,
  });

  checkMajor(trees, layout, ctx.bins.major);
  const t0 = performance.now();
  const fresh = !trees.data.exists(`${layout.pgdata}/PG_VERSION`);
  const replica = ctx.replication.role === "replica";
  if (!fresh) {
    // Before a rewind or a gap fetch writes WAL: pg_wal must be this volume's (a moved copy).
    const moved = checkWalLink(trees.data, layout);
    if (moved) log.warn(moved);
  }
  if (fresh) {
    const seed = replica
      ? undefined
      : findSeed(ctx.settings.seedDir, ctx.bins, ctx.manifest, ctx.caps);
    if (!replica) {
      log.info(
        `first boot: initializing ${layout.pgdata} (PostgreSQL ${ctx.bins.version}) from ${
          seed ? `the seed in ${seed.dir}` : "initdb"
        }`,
      );
    }
    await firstBoot({
      data: trees.data,
      layout,
      bins: ctx.bins,
      runAs,
      password: ctx.settings.password,
      seed,
      ...(replica ? { clone: cloneInto(ctx, hooks) } : {}),
    });
  } else if (replica) {
    await prepareStandby(ctx, hooks);
  }
  clearMarkers(trees.data, layout);
  const initdbMs = Math.round(performance.now() - t0);
  let gap: GapResult | undefined;
  if (!fresh && !replica && ctx.settings.replication.sinks.length && ctx.newFork) {
    // The snapshot is the fork's end of WAL: what the sinks hold past it is the parent's.
    log.info("gap fetch: skipped on a fork's first boot (the sinks' WAL is the parent's)");
  } else if (!fresh && !replica && ctx.settings.replication.sinks.length) {
    gap = await fetchGap(ctx, {
      ...(hooks.stop ? { stop: hooks.stop } : {}),
      report: (problem) => hooks.report?.({ problem }),
    });
  }
  const t1 = performance.now();

  trees.data.ensureDir(layout.confDir, 0o700);
  trees.data.ensureDir(layout.stateDir, 0o700);
  const tls = await resolveTls(tlsOptions(ctx));
  const plan = planFor(ctx, tls.material);
  for (const warning of plan.warnings) log.warn(warning);
  const changed = applyPlan(plan, trees);
  if (applyIncludeDir(trees, layout)) changed.push(`${layout.pgdata}/postgresql.conf`);
  if (changed.length) {
    log.info(`configuration written: ${changed.map((p) => p.split("/").pop()).join(", ")}`);
  }
  return {
    tls: tls.material,
    tlsProblem: tls.problem,
    initdbMs,
    configMs: Math.round(performance.now() - t1),
    firstBoot: fresh,
    plan,
    changed,
    ...(gap ? { gap } : {}),
  };
}

export async function runPreStart(ctx: BootContext): Promise<number> {
  const t = performance.now();
  const results = await runHooks("pre-start", {
    hooksDir: ctx.layout.hooksDir,
    timeoutMs: ctx.settings.hookTimeoutMs,
    env: ctx.hookEnv,
  });
  const failed = results.find((r) => r.code !== 0);
  if (failed) {
    throw new OperatorError(
      `Cannot start: pre-start hook ${failed.name} ${
        failed.timedOut ? "timed out" : `exited ${failed.code}`
      }; fix or remove ${ctx.layout.hooksDir}/pre-start.d/${failed.name}`,
    );
  }
  return Math.round(performance.now() - t);
}

export async function boot(ctx: BootContext, hooks: ReplicaBootHooks = {}): Promise<BootResult> {
  const prepared = await prepareData(ctx, hooks);
  const hooksMs = await runPreStart(ctx);
  return { ...prepared, hooksMs };
}
