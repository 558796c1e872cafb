/**
 * EFFECT: what /healthz and /readyz say. Ready only when a `SELECT 1` through PgBouncer (what an
 * app does) succeeds now, and neither process restarted while it waited in PgBouncer's queue: a
 * probe that overlapped a restart reports it once instead of hiding it.
 */
import type { Admin } from "../supervise/admin.ts";
import type { Supervisor } from "../supervise/supervisor.ts";
import { errorMessage } from "../util/errors.ts";

export function live(sup: Supervisor): boolean {
  return sup.status().state !== "failed";
}

export async function ready(
  sup: Supervisor,
  admin: Admin,
): Promise<{ ready: boolean; reason: string }> {
  const before = sup.status();
  if (!sup.postgresUp || !sup.pgbouncerUp) return { ready: false, reason: before.reason };
  try {
    await admin.selectOneThroughPgbouncer(2000);
  } catch (error) {
    return { ready: false, reason: errorMessage(error) };
  }
  const { restarts } = sup.status();
  const restarted = (["postgres", "pgbouncer"] as const).find((p) =>
    restarts[p] !== before.restarts[p]
  );
  return restarted
    ? { ready: false, reason: `${restarted} restarted during the check` }
    : { ready: true, reason: `5432 serves queries` };
}
