/**
 * EFFECT (small): what this node is in replication right now, and the one secret file it
 * needs. The tier (metadata) says what a node boots as; `promote`, `rejoin`, `set-primary` and
 * `set-sync-standbys` change the live state, which every later render of the config (reload,
 * TLS rotation) uses, so nothing reverts it behind the operator's back. A restart starts again
 * from metadata: the control plane records its decisions there.
 *
 * The replication password reaches postgres's processes (walreceiver, pg_basebackup,
 * pg_rewind) only through a passfile: `<run dir>/replication/pgpass`, in a root-owned
 * directory on the run dir's tmpfs (never on the volume, so never in a snapshot or a fork),
 * owned by postgres with mode 0600 — libpq refuses anything looser. postgres needs this secret
 * to replicate, so it is postgres's; no other file, argument or environment carries it.
 */
import type { PlanInput } from "../config/plan.ts";
import type { ReplicationRole, Upstream } from "../config/replication_conf.ts";
import type { Settings, SyncLevel, SyncSpec } from "../settings/settings.ts";
import { selfCommand } from "../process/self.ts";
import type { Layout } from "../config/layout.ts";
import type { Trees } from "./trees.ts";
import type { Owner } from "../fs/identity.ts";

export interface ReplicationNow {
  role: ReplicationRole;
  /** The primary a replica follows. */
  upstream: { host: string; port: number } | undefined;
  sync: SyncSpec;
  level: SyncLevel;
}

export function initialReplication(s: Settings): ReplicationNow {
  return {
    role: s.tier === "replica" ? "replica" : "primary",
    upstream: s.replication.primary,
    sync: s.replication.sync,
    level: s.replication.syncLevel,
  };
}

export function passfileDir(layout: Pick<Layout, "runDir">): string {
  return `${layout.runDir}/replication`;
}

export function passfilePath(layout: Pick<Layout, "runDir">): string {
  return `${passfileDir(layout)}/pgpass`;
}

/** pgpass escaping: `\` and `:` get a backslash. */
export function pgpassLine(user: string, password: string): string {
  const esc = (v: string) => v.replaceAll("\\", "\\\\").replaceAll(":", "\\:");
  return `*:*:*:${esc(user)}:${esc(password)}\n`;
}

/**
 * Write the passfile (only when replication is configured; otherwise make sure none is left).
 * Root writes it in its own directory, then hands it to postgres (0600).
 */
export function installPassfile(
  trees: Pick<Trees, "run">,
  layout: Pick<Layout, "runDir">,
  o: { user: string; password: string | undefined; owner: Owner | undefined },
): void {
  const dir = passfileDir(layout);
  const file = passfilePath(layout);
  if (o.password === undefined) {
    trees.run.remove(dir);
    return;
  }
  trees.run.ensureDir(dir, 0o755);
  trees.run.writeAtomic(file, pgpassLine(o.user, o.password), 0o600);
  trees.run.give(file, o.owner, 0o600);
}

/** The upstream as the config and the tools see it. */
export function upstreamOf(
  ctx: { settings: Settings; layout: Layout },
  at: { host: string; port: number },
): Upstream {
  return {
    host: at.host,
    port: at.port,
    name: ctx.settings.replication.standbyName,
    passfile: passfilePath(ctx.layout),
  };
}

/** 03-replication.conf's input for the state now (PlanInput.replication). */
export function replicationPlanInput(
  ctx: { settings: Settings; layout: Layout; replication: ReplicationNow },
): PlanInput["replication"] {
  const s = ctx.settings;
  const r = ctx.replication;
  return {
    replicas: s.tier !== "single",
    role: r.role,
    ...(r.role === "replica" && r.upstream ? { upstream: upstreamOf(ctx, r.upstream) } : {}),
    ...(r.role === "replica" && s.archiveTarget
      ? { restoreCommand: selfCommand("restore-wal", "%f", "%p") }
      : {}),
    sync: r.sync,
    level: r.level,
  };
}
