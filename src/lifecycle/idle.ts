/**
 * EFFECT: idle scale-to-zero (BEYOND_PG_IDLE_SHUTDOWN). Once 5432 serves, the watcher samples
 * what keeps the database busy (idle_policy.ts) every 1–5 s: PgBouncer's clients (SHOW CLIENTS)
 * and servers (SHOW SERVERS, to tell its connections from direct ones), walsenders, recovery,
 * the archive backlog. When the policy says stop: pre-stop hooks → PgBouncer PAUSE → look once
 * more (a client that came meanwhile: RESUME, stay up) → CHECKPOINT (the shutdown checkpoint
 * then has little to write, and the next boot nothing to replay) → the supervisor's clean stop
 * → exit 0, which PID 1 turns into a power-off.
 *
 * A session shorter than the sampling interval can go unseen; the count restarts at each one
 * seen, so a database used at least once per interval never stops.
 */
import { gauge } from "../metrics/prom.ts";
import type { Family } from "../metrics/prom.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import {
  busyReason,
  decideIdle,
  type IdleDecision,
  type IdleFacts,
  type IdleState,
  sampleEveryMs,
} from "./idle_policy.ts";

/** The application_name of the supervisor's own connections (supervise/admin.ts). */
const OURS = "beyond-pg-control";

export interface IdleDeps {
  sup: Supervisor;
  admin: Admin;
  /** BEYOND_PG_IDLE_SHUTDOWN (undefined: off). */
  afterS: number | undefined;
  /** WAL files waiting to be archived (0 without archiving). */
  archiveBacklog: () => number;
  /** A generation handoff is under way. */
  handoff: () => boolean;
}

export class IdleWatcher {
  readonly #d: IdleDeps;
  #state: IdleState = { lastActivityMs: Date.now(), lastClientMs: undefined };
  #last: IdleDecision | undefined;
  #stopping = false;

  constructor(deps: IdleDeps) {
    this.#d = deps;
  }

  /** Sample until `stop` aborts (only when idle shutdown is on). */
  async run(stop: AbortSignal): Promise<void> {
    const afterS = this.#d.afterS;
    if (afterS === undefined) return;
    this.#state = { lastActivityMs: Date.now(), lastClientMs: undefined };
    log.info(`idle shutdown after ${afterS} s without clients (BEYOND_PG_IDLE_SHUTDOWN)`);
    while (!stop.aborted && !this.#d.sup.stopping) {
      if (!(await sleep(sampleEveryMs(afterS), stop))) return;
      const facts = await this.sample();
      const d = decideIdle(afterS, this.#state, facts, Date.now());
      this.#state = d.state;
      this.#last = d;
      if (d.stop && !this.#d.sup.stopping) await this.#stopIdle(d);
    }
  }

  /** What keeps the database busy now. */
  async sample(): Promise<IdleFacts> {
    const { sup, admin } = this.#d;
    const base = {
      archiveBacklog: this.#d.archiveBacklog(),
      handoff: this.#d.handoff(),
    };
    const unknown = (why: string): IdleFacts => ({
      unknown: why,
      clients: 0,
      direct: 0,
      backups: 0,
      senders: 0,
      inRecovery: false,
      ...base,
    });
    if (base.handoff) return unknown("a handoff is under way");
    if (!sup.postgresUp || !sup.pgbouncerUp) return unknown(`state is ${sup.status().state}`);
    try {
      const clients = await admin.bouncer("SHOW CLIENTS");
      const servers = await admin.bouncer("SHOW SERVERS");
      const bouncerPids = new Set(servers.map((s) => String(s["remote_pid"] ?? "")));
      const [row] = await admin.query(
        `SELECT pg_is_in_recovery() AS recovery,
          (SELECT count(*) FROM pg_stat_replication WHERE state = 'backup') AS backups,
          (SELECT count(*) FROM pg_stat_replication WHERE state IS DISTINCT FROM 'backup') AS senders,
          (SELECT coalesce(string_agg(pid::text, ','), '') FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
              AND coalesce(application_name, '') <> '${OURS}') AS pids`,
        { timeoutMs: 2000 },
      );
      const direct = String(row?.["pids"] ?? "").split(",").filter((p) =>
        p !== "" && !bouncerPids.has(p)
      );
      return {
        clients: clients.filter((c) =>
          c["database"] !== "pgbouncer" && c["application_name"] !== OURS
        )
          .length,
        direct: direct.length,
        backups: Number(row?.["backups"] ?? 0),
        senders: Number(row?.["senders"] ?? 0),
        inRecovery: row?.["recovery"] === "t",
        ...base,
      };
    } catch (error) {
      return unknown(errorMessage(error));
    }
  }

  async #stopIdle(d: IdleDecision): Promise<void> {
    const { sup, admin } = this.#d;
    this.#stopping = true;
    log.info(`${d.reason} without clients (BEYOND_PG_IDLE_SHUTDOWN): stopping`);
    try {
      await sup.runPreStopHooks();
      await admin.bouncer("PAUSE", 10_000);
      const again = await this.sample();
      const busy = busyReason(again);
      if (busy !== undefined) {
        await admin.bouncer("RESUME").catch(() => {});
        this.#state = { lastActivityMs: Date.now(), lastClientMs: this.#state.lastClientMs };
        log.info(`idle stop called off: ${busy}`);
        return;
      }
      const t = performance.now();
      await admin.checkpoint(10 * 60_000);
      log.info(`idle stop: checkpoint in ${Math.round(performance.now() - t)} ms`);
      sup.requestStop(`idle for ${d.idleSeconds} s`, { preStopHooksRan: true });
    } catch (error) {
      await admin.bouncer("RESUME").catch(() => {});
      this.#state = { lastActivityMs: Date.now(), lastClientMs: this.#state.lastClientMs };
      log.warn(`idle stop failed, staying up: ${errorMessage(error)}`);
    } finally {
      this.#stopping = false;
    }
  }

  status(): Record<string, unknown> {
    const afterS = this.#d.afterS;
    if (afterS === undefined) return { shutdownAfterSeconds: "off" };
    const d = this.#last;
    return {
      shutdownAfterSeconds: afterS,
      idleSeconds: d?.idleSeconds ?? 0,
      lastClientActivity: this.#state.lastClientMs
        ? new Date(this.#state.lastClientMs).toISOString()
        : null,
      ...(this.#stopping ? { stopping: true } : { staysUpBecause: d?.reason ?? "starting" }),
    };
  }

  metrics(): Family[] {
    if (this.#d.afterS === undefined) return [];
    return [
      gauge(
        "beyond_pg_idle_seconds",
        "Seconds without clients, replicas, backups or archive backlog (BEYOND_PG_IDLE_SHUTDOWN).",
        this.#last?.idleSeconds ?? 0,
      ),
      gauge(
        "beyond_pg_last_client_activity_timestamp_seconds",
        "When a client session was last seen (0: none since start).",
        (this.#state.lastClientMs ?? 0) / 1000,
      ),
    ];
  }
}
