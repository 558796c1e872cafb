/**
 * PURE: what to do when a supervised child (postgres, PgBouncer, later the WAL receiver) did
 * not start or stopped. `(state, event) → (state, action)`, tested without processes
 * (policy_test.ts); the effects are in child_loop.ts.
 *
 *  - could not even be spawned → restart after backoff;
 *  - exited before it was up → if restore's fail-fast holds, fail (recovery that cannot reach
 *    its target repeats its FATAL forever); if 99-user.conf is to blame, quarantine it and start
 *    again at once (once); else restart after backoff;
 *  - exited after it was up → fail-fast, or restart after backoff (a child that ran for a
 *    minute starts over from the shortest delay; three quick failures are a crash loop).
 */
import { type BackoffPolicy, defaultBackoff, nextRestart } from "./backoff.ts";
import { describeExit, type ExitStatus, lastProblemLine } from "./exit.ts";
import { blameUserConf } from "./user_conf.ts";

export interface PolicyState {
  /** Quick failures in a row (backoff.ts). */
  failures: number;
}

export type ChildEvent =
  | { kind: "spawn-failed"; error: string }
  | {
    kind: "start-failed";
    status: ExitStatus;
    ranMs: number;
    tail: string[];
    /** 99-user.conf's text (postgres only), and whether it is already set aside. */
    userConf?: { text: string; quarantined: boolean };
  }
  | { kind: "exited"; status: ExitStatus; ranMs: number; tail: string[] };

export type ChildAction =
  | { kind: "restart"; delayMs: number; crashLoop: boolean; problem: string }
  | { kind: "quarantine"; problem: string }
  | { kind: "fail"; problem: string };

export interface PolicyOptions {
  /** A stop is an error, not a restart (restore before promotion). */
  failFast: boolean;
  backoff?: BackoffPolicy;
}

export const initialPolicyState: PolicyState = { failures: 0 };

export function decide(
  name: string,
  state: PolicyState,
  event: ChildEvent,
  o: PolicyOptions,
): { state: PolicyState; action: ChildAction } {
  const backoff = o.backoff ?? defaultBackoff;
  const restart = (ranMs: number, problem: string) => {
    const d = nextRestart(state.failures, ranMs, backoff);
    return {
      state: { failures: d.failures },
      action: { kind: "restart", delayMs: d.delayMs, crashLoop: d.crashLoop, problem } as const,
    };
  };
  if (event.kind === "spawn-failed") return restart(0, `cannot start ${name}: ${event.error}`);
  const why = `(${describeExit(event.status)}): ${lastProblemLine(event.tail)}`;
  if (o.failFast) return { state, action: { kind: "fail", problem: `${name} stopped ${why}` } };
  if (event.kind === "start-failed") {
    const u = event.userConf;
    if (u && !u.quarantined && blameUserConf(event.tail, u.text)) {
      return {
        state,
        action: { kind: "quarantine", problem: lastProblemLine(event.tail) },
      };
    }
    return restart(event.ranMs, `${name} did not start ${why}`);
  }
  return restart(event.ranMs, `${name} ${describeExit(event.status)}`);
}
