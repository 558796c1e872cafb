/**
 * PURE: the supervisor's state, derived from facts rather than stored, so it can never
 * disagree with them. Served by `status`.
 */

export type State =
  | "booting"
  | "starting"
  | "running"
  | "degraded"
  | "safe-mode"
  | "stopping"
  | "failed";

export interface Facts {
  phase: "booting" | "starting" | "up" | "stopping" | "failed";
  postgresUp: boolean;
  pgbouncerUp: boolean;
  /** Set when 99-user.conf was moved aside: the path it was moved to. */
  quarantined: string | undefined;
  /** Why we are not (fully) up, when we know. */
  problem: string | undefined;
}

export function deriveState(f: Facts): { state: State; reason: string } {
  if (f.phase === "failed") return { state: "failed", reason: f.problem ?? "setup failed" };
  if (f.phase === "stopping") return { state: "stopping", reason: "shutdown requested" };
  if (f.phase === "booting") {
    return { state: "booting", reason: f.problem ?? "preparing the data directory" };
  }
  if (f.phase === "starting") {
    return { state: "starting", reason: f.problem ?? "starting postgres" };
  }
  if (!f.postgresUp || !f.pgbouncerUp) {
    const down = [!f.postgresUp && "postgres", !f.pgbouncerUp && "pgbouncer"].filter(Boolean);
    return { state: "degraded", reason: f.problem ?? `${down.join(" and ")} restarting` };
  }
  if (f.quarantined) {
    return {
      state: "safe-mode",
      reason:
        `99-user.conf broke startup and was moved to ${f.quarantined}; fix it, move it back, then reload`,
    };
  }
  return { state: "running", reason: "accepting connections" };
}
