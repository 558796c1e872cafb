/**
 * PURE: PgBouncer's shutdown signals changed in 1.23 (SIGTERM became a "super safe" shutdown
 * that waits for clients; SIGQUIT took over immediate shutdown).
 */
import { compareVersions } from "../config/pgbouncer.ts";

export function pgbouncerSignals(version: string): { safe: Deno.Signal; immediate: Deno.Signal } {
  return {
    safe: "SIGINT",
    immediate: compareVersions(version, "1.23.0") >= 0 ? "SIGQUIT" : "SIGTERM",
  };
}
