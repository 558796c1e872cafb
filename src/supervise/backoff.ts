/**
 * PURE: restart policy for supervised children. Capped exponential backoff that never gives
 * up: a child that ran for `stableMs` starts over from `initialMs`.
 */

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  stableMs: number;
  /** This many quick failures in a row is a crash loop (reported, still retried). */
  crashLoopAfter: number;
}

export const defaultBackoff: BackoffPolicy = {
  initialMs: 500,
  maxMs: 30_000,
  stableMs: 60_000,
  crashLoopAfter: 3,
};

export interface RestartDecision {
  delayMs: number;
  failures: number;
  crashLoop: boolean;
}

export function nextRestart(
  failuresSoFar: number,
  ranMs: number,
  policy: BackoffPolicy = defaultBackoff,
): RestartDecision {
  const failures = ranMs >= policy.stableMs ? 1 : failuresSoFar + 1;
  const delayMs = Math.min(policy.initialMs * 2 ** (failures - 1), policy.maxMs);
  return { delayMs, failures, crashLoop: failures >= policy.crashLoopAfter };
}
