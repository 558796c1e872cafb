/**
 * EFFECT: what the control commands do, against the running supervisor. None of them takes SQL
 * or a path from the caller.
 */
import { applyConfig } from "../boot/boot.ts";
import { canConnectUnix } from "../util/net.ts";
import { CommandError } from "../rpc/dispatch.ts";
import type { Context } from "../boot/context.ts";
import { effectiveResources } from "../resources/resources.ts";
import type { TlsWatcher } from "../supervise/tls_watch.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { Admin } from "../supervise/admin.ts";
import { readPostmasterPid } from "../supervise/postmaster_pid.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { sleep } from "../util/sleep.ts";

/** Catalog relations a fork should prefetch (the spec's hot set). */
export const HOT_CATALOGS = [
  "pg_class",
  "pg_attribute",
  "pg_proc",
  "pg_index",
  "pg_namespace",
  // Read by every fork boot too (bench/lifecycle.ts traces what it opens).
  "pg_type",
  "pg_operator",
  "pg_statistic",
  "pg_rewrite",
];
/** At most this many WAL segments (from the last checkpoint's redo point on). */
const WAL_SEGMENTS_IN_HOT_SET = 64;

export class Operations {
  readonly #ctx: Context;
  readonly #sup: Supervisor;
  readonly #admin: Admin;

  readonly #tls: () => TlsWatcher | undefined;

  /** `tls`: the certificate watcher, once the database is up (reload rotates through it). */
  constructor(
    ctx: Context,
    supervisor: Supervisor,
    o: { admin: Admin; tls: () => TlsWatcher | undefined },
  ) {
    this.#ctx = ctx;
    this.#sup = supervisor;
    this.#admin = o.admin;
    this.#tls = o.tls;
  }

  #requirePostgres(what: string): void {
    if (!this.#sup.postgresUp) {
      throw new CommandError(
        "unavailable",
        `${what} needs a running postgres; state is ${this.#sup.status().state}`,
      );
    }
  }

  async health() {
    const pm = readPostmasterPid(this.#ctx.trees.data, this.#ctx.layout.pgdata);
    const accepting = pm?.status === "ready";
    let query = false;
    let latencyMs: number | undefined;
    let error: string | undefined;
    const t0 = performance.now();
    try {
      await this.#admin.query("SELECT 1", { timeoutMs: 2000 });
      query = true;
      latencyMs = Math.round((performance.now() - t0) * 100) / 100;
    } catch (e) {
      error = errorMessage(e);
    }
    const pgbouncer = await canConnectUnix(
      `${this.#ctx.layout.socketDir}/.s.PGSQL.${this.#ctx.settings.port}`,
    );
    return {
      ok: accepting && query && pgbouncer,
      postgres: {
        accepting,
        query,
        ...(latencyMs !== undefined ? { latencyMs } : {}),
        ...(error ? { error } : {}),
      },
      pgbouncer: { up: pgbouncer },
    };
  }

  async #checkpointCounts(): Promise<{ timed: number; requested: number }> {
    const sql = this.#ctx.bins.major >= 17
      ? "SELECT num_timed AS timed, num_requested AS requested FROM pg_stat_checkpointer"
      : "SELECT checkpoints_timed AS timed, checkpoints_req AS requested FROM pg_stat_bgwriter";
    await this.#admin.query("SELECT pg_stat_clear_snapshot()");
    const [row] = await this.#admin.query(sql);
    return { timed: Number(row?.["timed"] ?? 0), requested: Number(row?.["requested"] ?? 0) };
  }

  async checkpoint() {
    this.#requirePostgres("checkpoint");
    const before = await this.#checkpointCounts();
    const t0 = performance.now();
    await this.#admin.checkpoint(10 * 60_000);
    const ms = Math.round(performance.now() - t0);
    // The checkpointer reports its counters just after it finishes; give it a moment.
    let after = await this.#checkpointCounts();
    for (let i = 0; i < 20 && after.requested <= before.requested; i++) {
      await sleep(50);
      after = await this.#checkpointCounts();
    }
    return {
      ms,
      checkpointsRequestedBefore: before.requested,
      checkpointsRequestedAfter: after.requested,
    };
  }

  async reload() {
    this.#requirePostgres("reload");
    const ctx = this.#ctx;
    // Resources are detected again: a resized VM gets new tuning on reload.
    const { ramMb, vcpus } = effectiveResources(ctx.settings);
    const watcher = this.#tls();
    const tls = watcher ? await watcher.rotate() : { changed: false };
    const changed = applyConfig({ ...ctx, ramMb, vcpus }, watcher?.material);
    const [first] = await this.#admin.query("SELECT pg_conf_load_time()::text AS loaded");
    const loaded = first?.["loaded"];
    await this.#admin.query("SELECT pg_reload_conf()");
    // Our own backend applies the reload at its next command; wait until it has.
    for (let i = 0; i < 40; i++) {
      const [row] = await this.#admin.query("SELECT pg_conf_load_time()::text AS loaded");
      if (row?.["loaded"] !== loaded) break;
      await sleep(25);
    }
    const errors = await this.#admin.query(
      // "could not be applied" is a restart-only change: reported as pending, not as an error.
      `SELECT sourcefile, sourceline, name, error FROM pg_file_settings
       WHERE error IS NOT NULL AND error <> 'setting could not be applied'`,
    );
    const pending = await this.#admin.query(
      "SELECT name FROM pg_settings WHERE pending_restart ORDER BY name",
    );
    let pgbouncer = "reloaded";
    try {
      await this.#admin.bouncer("RELOAD");
    } catch (e) {
      pgbouncer = `not reloaded: ${errorMessage(e)}`;
    }
    const userConf = `${ctx.layout.confDir}/99-user.conf`;
    if (this.#sup.quarantined && !errors.some((e) => e["sourcefile"] === userConf)) {
      let text = "";
      try {
        text = ctx.trees.data.readText(userConf) ?? "";
      } catch { /* unreadable */ }
      if (!text.startsWith("# beyond-pg moved the previous contents")) {
        this.#sup.clearQuarantine();
        log.info("99-user.conf is back and loads without errors; leaving safe mode");
      }
    }
    return {
      changed,
      pendingRestart: pending.map((p) => p["name"]),
      errors: errors.map((e) => ({
        file: e["sourcefile"],
        line: Number(e["sourceline"]),
        setting: e["name"],
        error: e["error"],
      })),
      pgbouncer,
      tls: { rotated: tls.changed, ...(tls.problem ? { problem: tls.problem } : {}) },
      state: this.#sup.status().state,
    };
  }

  async drain(args: Record<string, unknown>) {
    if (!this.#sup.pgbouncerUp) {
      throw new CommandError("unavailable", "drain needs a running PgBouncer");
    }
    const timeoutMs = typeof args.timeoutMs === "number" ? args.timeoutMs : 30_000;
    const t0 = performance.now();
    await this.#admin.bouncer("PAUSE", timeoutMs);
    return { paused: true, ms: Math.round(performance.now() - t0) };
  }

  async resume() {
    if (!this.#sup.pgbouncerUp) {
      throw new CommandError("unavailable", "resume needs a running PgBouncer");
    }
    await this.#admin.bouncer("RESUME");
    return { paused: false };
  }

  async hotSet() {
    this.#requirePostgres("hot-set");
    const ctx = this.#ctx;
    const pgdata = ctx.layout.pgdata;
    const list = HOT_CATALOGS.map((c) => `'${c}'::regclass`).join(", ");
    const query = `SELECT c.relname, pg_relation_filepath(c.oid) AS path,
        (SELECT oid FROM pg_database WHERE datname = current_database()) AS dboid
      FROM pg_class c
      WHERE c.oid IN (${list})
         OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid IN (${list}))
         OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE oid IN (${list}))
      ORDER BY 1`;
    const databases = [...new Set(["postgres", ctx.settings.database])];
    const files: { path: string; bytes: number; why: string }[] = [];
    // PGDATA is postgres's: sizes are looked up as postgres, without following links.
    const fileSize = (path: string) => ctx.trees.data.stat(path)?.size;
    const add = (path: string, why: string) => {
      const bytes = fileSize(path);
      if (bytes !== undefined && !files.some((f) => f.path === path)) {
        files.push({ path, bytes, why });
      }
    };
    add(`${pgdata}/global/pg_control`, "pg_control");
    add(`${pgdata}/global/pg_filenode.map`, "shared relation map");
    add(`${pgdata}/global/pg_internal.init`, "shared relcache init file");
    for (const db of databases) {
      const rows = db === "postgres"
        ? await this.#admin.query(query)
        : await this.#admin.queryIn(db, query);
      if (rows[0]) {
        add(`${pgdata}/base/${rows[0]["dboid"]}/pg_filenode.map`, `relation map (${db})`);
        add(`${pgdata}/base/${rows[0]["dboid"]}/pg_internal.init`, `relcache init file (${db})`);
      }
      for (const row of rows) {
        const base = `${pgdata}/${row["path"]}`;
        const why = `${row["relname"]} (${db})`;
        for (const fork of ["", "_fsm", "_vm"]) add(`${base}${fork}`, why);
        for (let seg = 1; fileSize(`${base}.${seg}`) !== undefined; seg++) {
          add(`${base}.${seg}`, why);
        }
      }
    }
    // What a fork replays: from the last checkpoint's redo segment to the insert position's
    // (newer names in pg_wal are recycled segments not written yet).
    const [w] = await this.#admin.query(
      `SELECT redo_wal_file AS first, CASE WHEN pg_is_in_recovery() THEN ''
         ELSE pg_walfile_name(pg_current_wal_insert_lsn()) END AS last
       FROM pg_control_checkpoint()`,
    );
    const first = String(w?.["first"] ?? "");
    const last = String(w?.["last"] ?? "");
    const wal = ctx.trees.data.list(ctx.layout.walDir)
      .map((e) => e.name)
      .filter((n) => /^[0-9A-F]{24}$/.test(n) && n >= first && (last === "" || n <= last))
      .sort()
      .slice(-WAL_SEGMENTS_IN_HOT_SET);
    for (const seg of wal) add(`${ctx.layout.walDir}/${seg}`, "recent WAL");
    return { files, totalBytes: files.reduce((n, f) => n + f.bytes, 0) };
  }
}
