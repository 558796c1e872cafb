/**
 * PURE: when and how long the S3 client waits before sending a failed request again. Capped
 * exponential backoff with full jitter (a random wait from 0 to min(cap, base × 2^n)), so that
 * many clients throttled at once do not come back at once. What is worth another attempt is
 * decided from the failure: the store's 5xx, throttling (503 SlowDown, 429), its request
 * timeouts, and the network's resets, idle timeouts and refused connections. A clock the store
 * calls skewed, or credentials it calls expired, are retried once at once (after correcting the
 * clock or reading the credentials again: client.ts).
 */

export interface RetryPolicy {
  /** Attempts in all, the first included (1: no retry). */
  attempts: number;
  baseMs: number;
  capMs: number;
}

/** Eight attempts: waits of up to 0.2, 0.4, … 12.8 s, at most ~25 s in all. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseMs: 200, capMs: 20_000 };

export type RetryReason =
  | "server"
  | "throttle"
  | "timeout"
  | "reset"
  | "connect"
  | "skew"
  | "credentials";

export const RETRY_REASONS: readonly RetryReason[] = [
  "server",
  "throttle",
  "timeout",
  "reset",
  "connect",
  "skew",
  "credentials",
];

/** The wait before attempt `failed + 1`, after `failed` (≥ 1) attempts failed. */
export function backoffMs(failed: number, p: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(p.capMs, p.baseMs * 2 ** Math.min(failed - 1, 30));
  return Math.floor(random() * ceiling);
}

/** Codes of credentials that ran out: read them again, then retry. */
export const EXPIRED_CODES = new Set([
  "ExpiredToken",
  "ExpiredTokenException",
  "TokenRefreshRequired",
  "InvalidToken",
]);

const THROTTLE_CODES = new Set([
  "SlowDown",
  "Throttling",
  "ThrottlingException",
  "RequestLimitExceeded",
  "TooManyRequests",
]);

/**
 * Why a failure is worth another attempt, or undefined. `status` 0 is a transport failure whose
 * `code` says which (client.ts TRANSPORT_CODES).
 */
export function retryReason(
  f: { status: number; code: string },
  o: { refreshableCredentials: boolean },
): RetryReason | undefined {
  if (f.code === "RequestTimeTooSkewed") return "skew";
  if (EXPIRED_CODES.has(f.code)) return "credentials";
  if (
    o.refreshableCredentials && (f.code === "InvalidAccessKeyId" || f.status === 403) &&
    f.code !== "AccessDenied"
  ) {
    return "credentials";
  }
  if (f.status === 0) {
    switch (f.code) {
      case "ConnectionClosed":
        return "reset";
      case "IdleTimeout":
        return "timeout";
      case "ConnectFailed":
        return "connect";
      default:
        return undefined; // TLS (certificates), a bad answer, the caller's deadline
    }
  }
  if (f.status === 503 || f.status === 429 || THROTTLE_CODES.has(f.code)) return "throttle";
  if (f.status === 408 || f.code === "RequestTimeout") return "timeout";
  if (f.status >= 500) return "server";
  return undefined;
}
