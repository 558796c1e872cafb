/**
 * EFFECT: gather the metrics. Supervisor facts cost nothing; SQL and PgBouncer's SHOW POOLS run
 * with short timeouts, in parallel, and a failure only leaves those families out (with
 * beyond_pg_up 0), so a scrape never hangs on a dead postgres nor blocks the supervisor.
 */
import type { Context } from "../boot/context.ts";
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { counter, type Family, gauge, type Sample } from "../metrics/prom.ts";
import { statFields } from "../util/proc.ts";

const STATES = ["booting", "starting", "running", "degraded", "safe-mode", "stopping", "failed"];
const SQL_TIMEOUT_MS = 1500;

type Row = Record<string, string | null>;
const num = (v: unknown) => (v === null || v === undefined ? NaN : Number(v));

async function attempt<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch {
    return undefined;
  }
}

export interface CollectExtras {
  /** Families contributed by other subsystems (archiving, log forwarding). */
  extra?: () => Family[];
}

export async function collectMetrics(
  ctx: Context,
  sup: Supervisor,
  admin: Admin,
  extras: CollectExtras = {},
): Promise<Family[]> {
  const status = sup.status();
  const families: Family[] = [
    gauge(
      "beyond_pg_state",
      "Supervisor state (1 for the current one).",
      STATES.map((s) => ({
        labels: { state: s },
        value: s === status.state ? 1 : 0,
      })),
    ),
    gauge(
      "beyond_pg_uptime_seconds",
      "Seconds since the supervisor started.",
      status.uptimeSeconds,
    ),
    gauge(
      "beyond_pg_startup_phase_seconds",
      "Duration of each startup phase of the last boot.",
      Object.entries(status.phases).filter(([k]) => k.endsWith("_ms")).map(([k, v]) => ({
        labels: { phase: k.replace(/_ms$/, "") },
        value: v / 1000,
      })),
    ),
    counter(
      "beyond_pg_child_restarts_total",
      "Restarts of a supervised child after it exited unexpectedly.",
      (["postgres", "pgbouncer"] as const).map((c) => ({
        labels: { child: c },
        value: status.restarts[c],
      })),
    ),
    gauge(
      "beyond_pg_child_last_exit_code",
      "Exit code of a child's last unexpected exit (128+signal when killed).",
      (["postgres", "pgbouncer"] as const).flatMap((c) => {
        const text = status.lastExit[c];
        if (!text) return [];
        const code = text.match(/exited (\d+)/)?.[1];
        const sig = text.match(/killed by (\w+)/)?.[1];
        const value = code !== undefined ? Number(code) : 128 + (sig ? signalNumber(sig) : 0);
        return [{ labels: { child: c }, value }];
      }),
    ),
    gauge(
      "beyond_pg_pgbouncer_up",
      "1 when PgBouncer is running and accepting.",
      sup.pgbouncerUp ? 1 : 0,
    ),
    ...processFamilies(),
  ];
  if (!sup.postgresUp) {
    families.push(gauge("beyond_pg_up", "1 when postgres answers queries.", 0));
    families.push(...(extras.extra?.() ?? []));
    return families;
  }
  const q = (text: string): Promise<Row[] | undefined> =>
    attempt(admin.query(text, { timeoutMs: SQL_TIMEOUT_MS }));
  const checkpointSql = ctx.bins.major >= 17
    ? "SELECT num_timed AS timed, num_requested AS requested FROM pg_stat_checkpointer"
    : "SELECT checkpoints_timed AS timed, checkpoints_req AS requested FROM pg_stat_bgwriter";
  const [up, conns, archiver, wal, checkpoints, pools] = await Promise.all([
    q("SELECT 1 AS one"),
    q(`SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity
       WHERE backend_type = 'client backend' GROUP BY 1`),
    q(`SELECT archived_count, failed_count,
         extract(epoch FROM last_archived_time) AS last_archived,
         extract(epoch FROM last_failed_time) AS last_failed FROM pg_stat_archiver`),
    q(`SELECT pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()
         ELSE pg_current_wal_lsn() END, '0/0') AS bytes`),
    q(checkpointSql),
    sup.pgbouncerUp
      ? attempt(admin.bouncer("SHOW POOLS", SQL_TIMEOUT_MS))
      : Promise.resolve(undefined),
  ]);
  families.push(gauge("beyond_pg_up", "1 when postgres answers queries.", up ? 1 : 0));
  if (conns) {
    families.push(gauge(
      "beyond_pg_connections",
      "Client backends by state (pg_stat_activity).",
      conns.map((r) => ({ labels: { state: String(r.state) }, value: num(r.n) })),
    ));
  }
  const a = archiver?.[0];
  if (a) {
    families.push(
      counter(
        "beyond_pg_archiver_archived_total",
        "WAL files archived (pg_stat_archiver).",
        num(a.archived_count),
      ),
      counter(
        "beyond_pg_archiver_failed_total",
        "Failed archive attempts (pg_stat_archiver).",
        num(a.failed_count),
      ),
    );
    if (a.last_archived !== null) {
      families.push(
        gauge(
          "beyond_pg_archiver_last_archived_timestamp_seconds",
          "Time of the last archived WAL file.",
          num(a.last_archived),
        ),
      );
    }
    if (a.last_failed !== null) {
      families.push(
        gauge(
          "beyond_pg_archiver_last_failed_timestamp_seconds",
          "Time of the last failed archive attempt.",
          num(a.last_failed),
        ),
      );
    }
  }
  if (wal?.[0]) {
    families.push(
      counter(
        "beyond_pg_wal_bytes_total",
        "WAL bytes written since the cluster was created.",
        num(wal[0].bytes),
      ),
    );
  }
  if (checkpoints?.[0]) {
    families.push(
      counter(
        "beyond_pg_checkpoints_timed_total",
        "Checkpoints started by checkpoint_timeout.",
        num(checkpoints[0].timed),
      ),
      counter(
        "beyond_pg_checkpoints_requested_total",
        "Checkpoints requested (max_wal_size, CHECKPOINT).",
        num(checkpoints[0].requested),
      ),
    );
  }
  if (pools) {
    const clients: Sample[] = [];
    const servers: Sample[] = [];
    const wait: Sample[] = [];
    for (const p of pools) {
      const l = { database: String(p.database), user: String(p.user) };
      clients.push({ labels: { ...l, state: "active" }, value: num(p.cl_active) });
      clients.push({ labels: { ...l, state: "waiting" }, value: num(p.cl_waiting) });
      for (const s of ["active", "idle", "used", "tested", "login"]) {
        servers.push({ labels: { ...l, state: s }, value: num(p[`sv_${s}`]) });
      }
      wait.push({ labels: l, value: num(p.maxwait) + num(p.maxwait_us ?? 0) / 1e6 });
    }
    families.push(
      gauge(
        "beyond_pg_pgbouncer_pool_clients",
        "PgBouncer client connections per pool (SHOW POOLS).",
        clients,
      ),
      gauge(
        "beyond_pg_pgbouncer_pool_servers",
        "PgBouncer server connections per pool (SHOW POOLS).",
        servers,
      ),
      gauge(
        "beyond_pg_pgbouncer_pool_max_wait_seconds",
        "Longest wait of a queued client per pool.",
        wait,
      ),
    );
  }
  families.push(...(extras.extra?.() ?? []));
  return families;
}

function signalNumber(name: string): number {
  const table: Record<string, number> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGABRT: 6,
    SIGKILL: 9,
    SIGSEGV: 11,
    SIGTERM: 15,
  };
  return table[name] ?? 0;
}

/** The supervisor process itself (the standard process_* names, prefixed). */
function processFamilies(): Family[] {
  try {
    const status = Deno.readTextFileSync("/proc/self/status");
    const kb = (k: string) =>
      Number(status.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? 0) * 1024;
    const f = statFields(Deno.readTextFileSync("/proc/self/stat"));
    const cpu = (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks
    return [
      gauge(
        "beyond_pg_process_resident_memory_bytes",
        "Resident memory of the supervisor (PID 1 in a VM).",
        kb("VmRSS"),
      ),
      gauge(
        "beyond_pg_process_resident_memory_max_bytes",
        "Peak resident memory of the supervisor.",
        kb("VmHWM"),
      ),
      counter(
        "beyond_pg_process_cpu_seconds_total",
        "CPU time of the supervisor (user + system).",
        cpu,
      ),
      gauge("beyond_pg_process_heap_bytes", "The supervisor's JavaScript heap (V8) by kind.", [
        { labels: { kind: "used" }, value: Deno.memoryUsage().heapUsed },
        { labels: { kind: "total" }, value: Deno.memoryUsage().heapTotal },
        { labels: { kind: "external" }, value: Deno.memoryUsage().external },
      ]),
    ];
  } catch {
    return [];
  }
}
