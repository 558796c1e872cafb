/**
 * An accept loop that outlives its errors. Running out of file descriptors (EMFILE, ENFILE),
 * memory (ENOMEM, ENOBUFS) or a peer that gave up before we accepted (ECONNABORTED) are
 * passing conditions: the loop backs off (50 ms doubling to 1 s) and keeps listening. Only
 * the listener being closed ends it. Used by HTTP and by the control servers (Unix, vsock).
 */
import { errorMessage } from "./errors.ts";
import { log } from "./log.ts";
import { sleep } from "./sleep.ts";

/** Errno names of accept failures that go away by themselves (or once connections close). */
export const TRANSIENT_ACCEPT_ERRORS: ReadonlySet<string> = new Set([
  "EMFILE",
  "ENFILE",
  "ENOMEM",
  "ENOBUFS",
  "ECONNABORTED",
  "EPROTO",
]);

const errnoCodes: Record<number, string> = {
  12: "ENOMEM",
  23: "ENFILE",
  24: "EMFILE",
  71: "EPROTO",
  103: "ECONNABORTED",
  105: "ENOBUFS",
};

/** The errno name of an accept error: Deno's `code`, or an ErrnoError's `errno` (FFI). */
export function acceptErrorCode(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const e = error as { code?: unknown; errno?: unknown };
  if (typeof e.errno === "number" && errnoCodes[e.errno]) return errnoCodes[e.errno];
  return typeof e.code === "string" ? e.code : undefined;
}

export function isTransientAcceptError(error: unknown): boolean {
  const code = acceptErrorCode(error);
  return code !== undefined && TRANSIENT_ACCEPT_ERRORS.has(code);
}

/** Pause after the `failures`-th accept error in a row (1-based): 50, 100, 200 … 1000 ms. */
export function acceptBackoffMs(failures: number): number {
  return Math.min(1000, 50 * 2 ** Math.max(0, Math.min(failures - 1, 10)));
}

export interface AcceptLoopOptions {
  /** Names the listener in log lines ("http 127.0.0.1:9188"). */
  what: string;
  /** True once the listener was closed on purpose: the loop then ends. */
  closed: () => boolean;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Accept until the listener is closed (`accept` resolves null, or throws once `closed()`),
 * handing each connection to `serve` (which must not throw and must not be awaited here).
 * One warning when a run of failures starts and one line when it ends, however long it lasts.
 */
export async function acceptLoop<C>(
  accept: () => Promise<C | null>,
  serve: (conn: C) => void,
  o: AcceptLoopOptions,
): Promise<void> {
  const pause = o.sleep ?? (async (ms: number) => void await sleep(ms));
  let failures = 0;
  for (;;) {
    let conn: C | null;
    try {
      conn = await accept();
    } catch (error) {
      if (o.closed()) return;
      failures++;
      if (failures === 1) {
        const kind = isTransientAcceptError(error) ? "backing off" : "unexpected; backing off";
        log.warn(
          `${o.what}: accept failed (${errorMessage(error)}), ${kind} and listening on; ` +
            `if it is EMFILE, raise the open-files limit or find who holds the descriptors`,
        );
      }
      await pause(acceptBackoffMs(failures));
      continue;
    }
    if (conn === null) return;
    if (failures > 0) {
      log.info(`${o.what}: accepting again after ${failures} failed accepts`);
      failures = 0;
    }
    serve(conn);
  }
}
