/**
 * EFFECT: the replication commands a control plane drives failover with. Each changes the
 * live replication state (boot/replication.ts), rewrites 03-replication.conf from it and
 * reloads postgres (SIGHUP: no restart) — except `rejoin`, which must stop postgres to run
 * pg_rewind. None takes SQL or a path; names are checked against the slot-name grammar.
 *
 *   promote            a replica becomes the primary (pg_promote, new timeline; the archive's
 *                      lineage moves to it), optionally with its synchronous standbys
 *   rejoin | demote    a former primary (or any node) becomes a replica of `primary`
 *                      (pg_rewind, then standby)
 *   set-primary        a replica follows another primary (after a failover)
 *   add-standby        the primary keeps a slot for a standby (its WAL is retained)
 *   drop-standby       … and lets it go
 *   set-sync-standbys  what a commit waits for: `ANY k (…)`, `FIRST k (…)`, or nobody
 */
import { applyConfig } from "../boot/boot.ts";
import type { Context } from "../boot/context.ts";
import { checkSameCluster, STANDBY_SIGNAL } from "../boot/replica.ts";
import { clusterSysid } from "../boot/cluster.ts";
import { rewindFrom } from "../boot/upstream.ts";
import { quoteLiteral } from "../pg/client.ts";
import { CommandError } from "../rpc/dispatch.ts";
import {
  formatSyncSpec,
  parseSyncLevel,
  parseSyncSpec,
  standbyNameProblem,
} from "../settings/sync_spec.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import type { TlsMaterial } from "../tls/material.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import type { ReplicationMonitor } from "./replication_status.ts";

export interface ReplicationPorts {
  admin: Admin;
  monitor: ReplicationMonitor;
  /** The TLS material in use (config is re-rendered with it). */
  tls: () => TlsMaterial | undefined;
  /** Tell archiving this cluster is its prefix's primary from now on (lineage). */
  archivePromote: () => void;
  /** … and that it is on `timeline` now (the old timeline's last segment may need storing). */
  archivePromoted: (timeline: number) => void;
}

function hostPortArg(args: Record<string, unknown>): { host: string; port: number } {
  const text = typeof args["primary"] === "string" ? args["primary"] : "";
  const m = text.match(/^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9][A-Za-z0-9.-]*)):(\d{1,5})$/);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535) {
    throw new CommandError(
      "bad_args",
      `primary=${
        JSON.stringify(text)
      } is not host:port; pass --arg primary=HOST:PORT (the new primary's direct port)`,
    );
  }
  return { host: m[1] ?? m[2]!, port };
}

function nameArg(args: Record<string, unknown>): string {
  const name = typeof args["name"] === "string" ? args["name"] : "";
  const problem = standbyNameProblem(name);
  if (problem) throw new CommandError("bad_args", `name: ${problem}`);
  return name;
}

export class ReplicationOps {
  readonly #ctx: Context;
  readonly #sup: Supervisor;
  readonly #p: ReplicationPorts;
  /** One role change at a time. */
  #busy: Promise<unknown> = Promise.resolve();

  constructor(ctx: Context, sup: Supervisor, ports: ReplicationPorts) {
    this.#ctx = ctx;
    this.#sup = sup;
    this.#p = ports;
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(() => fn(), () => fn());
    this.#busy = run.catch(() => {});
    return run;
  }

  #requirePostgres(what: string): void {
    if (!this.#sup.postgresUp) {
      throw new CommandError(
        "unavailable",
        `${what} needs a running postgres; state is ${this.#sup.status().state}`,
      );
    }
  }

  async #inRecovery(): Promise<boolean> {
    const [row] = await this.#p.admin.query("SELECT pg_is_in_recovery() AS rec");
    return row?.["rec"] === "t";
  }

  /** Re-render the config for the state now and SIGHUP postgres; returns changed files. */
  async #applyAndReload(): Promise<string[]> {
    const changed = applyConfig(this.#ctx, this.#p.tls());
    const [before] = await this.#p.admin.query("SELECT pg_conf_load_time()::text AS t");
    await this.#p.admin.query("SELECT pg_reload_conf()");
    for (let i = 0; i < 40; i++) {
      const [row] = await this.#p.admin.query("SELECT pg_conf_load_time()::text AS t");
      if (row?.["t"] !== before?.["t"]) break;
      await sleep(25);
    }
    return changed.map((p) => p.split("/").pop()!);
  }

  /** The sync spec and level from args (either may be left out: kept as they are). */
  #syncFrom(args: Record<string, unknown>) {
    const r = this.#ctx.replication;
    let sync = r.sync;
    let level = r.level;
    if (args["standbys"] !== undefined) {
      const text = String(args["standbys"]);
      const parsed = parseSyncSpec(text === "off" || text === "none" ? "" : text);
      if (typeof parsed === "string") throw new CommandError("bad_args", `standbys: ${parsed}`);
      sync = parsed;
    }
    if (args["level"] !== undefined) {
      const parsed = parseSyncLevel(String(args["level"]));
      if ("problem" in parsed) throw new CommandError("bad_args", `level: ${parsed.problem}`);
      level = parsed.level;
    }
    const sinks = new Set(this.#ctx.settings.replication.sinks.map((s) => s.name));
    if (level === "remote_apply" && sync.names.some((n) => sinks.has(n))) {
      throw new CommandError(
        "bad_args",
        "level remote_apply with a WAL sink among the standbys: a sink never applies WAL, so commits would wait forever; use remote_write or on",
      );
    }
    return { sync, level };
  }

  promote(args: Record<string, unknown>) {
    return this.#serial(async () => {
      this.#requirePostgres("promote");
      if (!(await this.#inRecovery())) {
        throw new CommandError(
          "failed",
          "promote refused: this node is already a primary (not in recovery); promote a replica",
        );
      }
      const { sync, level } = this.#syncFrom(args);
      const t0 = performance.now();
      // The archive must take the new timeline's history file as the prefix's lineage.
      this.#p.archivePromote();
      const [row] = await this.#p.admin.query("SELECT pg_promote(true, 60) AS done", {
        timeoutMs: 70_000,
      });
      if (row?.["done"] !== "t") {
        throw new CommandError("failed", "pg_promote did not finish within 60 s; see the log");
      }
      const promotedMs = Math.round(performance.now() - t0);
      Object.assign(this.#ctx.replication, { role: "primary", sync, level });
      const changed = await this.#applyAndReload();
      const snap = await this.#p.monitor.refresh();
      if (snap?.timeline) this.#p.archivePromoted(snap.timeline);
      log.info(
        `promoted to primary in ${promotedMs} ms: timeline ${snap?.timeline}, WAL at ${snap?.lsn}; synchronous standbys: ${
          formatSyncSpec(sync) || "none"
        }`,
      );
      return {
        promoted: true,
        ms: promotedMs,
        timeline: snap?.timeline,
        lsn: snap?.lsn,
        synchronousStandbyNames: formatSyncSpec(sync),
        changed,
      };
    });
  }

  /** A running node becomes a replica of `primary`: pg_rewind while postgres is stopped. */
  rejoin(args: Record<string, unknown>) {
    return this.#serial(async () => {
      const ctx = this.#ctx;
      const at = args["primary"] === undefined && ctx.replication.upstream
        ? ctx.replication.upstream
        : hostPortArg(args);
      await this.#sameCluster(at);
      const t0 = performance.now();
      let rewound = "";
      let failure: unknown;
      await this.#sup.cyclePostgres(`rejoin: pg_rewind onto ${at.host}:${at.port}`, async () => {
        try {
          rewound = await rewindFrom(ctx, at);
        } catch (error) {
          failure = error;
        }
        // Whatever pg_rewind did, this node must not come back as a primary.
        ctx.trees.data.remove(`${ctx.layout.pgdata}/recovery.signal`, false);
        ctx.trees.data.writeAtomic(`${ctx.layout.pgdata}/${STANDBY_SIGNAL}`, "", 0o600);
        Object.assign(ctx.replication, { role: "replica", upstream: at });
        applyConfig(ctx, this.#p.tls());
      });
      if (failure) throw new CommandError("failed", errorMessage(failure));
      log.info(`rejoined as a replica of ${at.host}:${at.port} (pg_rewind: ${rewound})`);
      return { rejoined: true, primary: `${at.host}:${at.port}`, pgRewind: rewound, ms: ms(t0) };
    });
  }

  setPrimary(args: Record<string, unknown>) {
    return this.#serial(async () => {
      this.#requirePostgres("set-primary");
      const at = hostPortArg(args);
      if (!(await this.#inRecovery())) {
        throw new CommandError(
          "failed",
          "set-primary refused: this node is a primary; make it a replica with rejoin (pg_rewind)",
        );
      }
      await this.#sameCluster(at);
      this.#ctx.replication.upstream = at;
      this.#ctx.replication.role = "replica";
      const changed = await this.#applyAndReload();
      log.info(`following the primary ${at.host}:${at.port}`);
      return { primary: `${at.host}:${at.port}`, changed };
    });
  }

  async #sameCluster(at: { host: string; port: number }): Promise<void> {
    try {
      await checkSameCluster(this.#ctx, at, clusterSysid(this.#ctx.trees.data, this.#ctx.layout));
    } catch (error) {
      if (error instanceof OperatorError) {
        throw new CommandError(
          error.exitCode === 2 ? "bad_args" : "unavailable",
          error.message.replace(/^Cannot start: /, ""),
        );
      }
      throw error;
    }
  }

  addStandby(args: Record<string, unknown>) {
    return this.#serial(async () => {
      this.#requirePostgres("add-standby");
      const name = nameArg(args);
      if (await this.#inRecovery()) {
        throw new CommandError("failed", "add-standby runs on the primary; this node is a replica");
      }
      const rows = await this.#p.admin.query(
        `SELECT 1 FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(name)}`,
      );
      if (rows.length === 0) {
        await this.#p.admin.query(
          `SELECT pg_create_physical_replication_slot(${quoteLiteral(name)}, true)`,
        );
        log.info(`add-standby: slot ${name} created (WAL is kept for it from now on)`);
      }
      return { name, slot: name, created: rows.length === 0 };
    });
  }

  dropStandby(args: Record<string, unknown>) {
    return this.#serial(async () => {
      this.#requirePostgres("drop-standby");
      const name = nameArg(args);
      const [row] = await this.#p.admin.query(
        `SELECT active_pid FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(name)}`,
      );
      if (!row) return { name, dropped: false };
      if (row["active_pid"] !== null) {
        throw new CommandError(
          "failed",
          `standby ${name} is connected (walsender pid ${
            row["active_pid"]
          }); stop it (or point it elsewhere) first, then drop it`,
        );
      }
      await this.#p.admin.query(`SELECT pg_drop_replication_slot(${quoteLiteral(name)})`);
      const named = this.#ctx.replication.sync.names.includes(name);
      log.info(`drop-standby: slot ${name} dropped`);
      return {
        name,
        dropped: true,
        ...(named
          ? {
            warning: `${name} is still named in synchronous_standby_names (${
              formatSyncSpec(this.#ctx.replication.sync)
            }); change it with set-sync-standbys`,
          }
          : {}),
      };
    });
  }

  setSyncStandbys(args: Record<string, unknown>) {
    return this.#serial(async () => {
      this.#requirePostgres("set-sync-standbys");
      if (args["standbys"] === undefined && args["level"] === undefined) {
        throw new CommandError(
          "bad_args",
          "give standbys (e.g. --arg 'standbys=ANY 1 (r1, r2)', or standbys=off) and/or level (remote_write, on, remote_apply)",
        );
      }
      const { sync, level } = this.#syncFrom(args);
      Object.assign(this.#ctx.replication, { sync, level });
      const changed = await this.#applyAndReload();
      const snap = await this.#p.monitor.refresh();
      const known = new Set([
        ...(snap?.slots ?? []).map((s) => s.name),
        ...(snap?.standbys ?? []).map((s) => s.name),
      ]);
      const unknown = sync.names.filter((n) => !known.has(n));
      const warnings = unknown.length
        ? [
          `no slot or connection for ${
            unknown.join(", ")
          } yet: PostgreSQL accepts the name, and commits wait until enough of the named standbys connect`,
        ]
        : [];
      for (const w of warnings) log.warn(`set-sync-standbys: ${w}`);
      const text = formatSyncSpec(sync);
      log.info(
        `synchronous standbys: ${text || "none"}${text ? ` (synchronous_commit = ${level})` : ""}${
          this.#ctx.replication.role === "replica" ? " (applies once this replica is promoted)" : ""
        }`,
      );
      return {
        synchronousStandbyNames: text,
        synchronousCommit: text ? level : "on",
        role: this.#ctx.replication.role,
        waiting: snap?.sync ? !snap.sync.met : false,
        ...(snap?.sync?.problem ? { problem: snap.sync.problem } : {}),
        warnings,
        changed,
      };
    });
  }
}

function ms(t0: number): number {
  return Math.round(performance.now() - t0);
}
