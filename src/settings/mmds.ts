/**
 * Firecracker MMDS client: V2 (PUT /latest/api/token, then GET with X-metadata-token), falling
 * back to V1 (plain GET) when the token endpoint is absent. Connection failures retry with
 * capped exponential backoff until the deadline. Used only when BEYOND_MMDS_URL is set or when
 * running as PID 1 — never by default (see load.ts).
 */
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";

export interface MmdsOptions {
  /** Give up after this long (ms); Infinity retries forever (PID 1 fails closed and waits). */
  deadlineMs: number;
  /** Per-request timeout (ms). */
  requestTimeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

class Transient extends Error {}

const defaultSleep = async (ms: number) => void await sleep(ms);

async function request(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new Transient(`cannot reach ${url}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

async function fetchOnce(base: string, timeoutMs: number): Promise<string> {
  const tokenResponse = await request(`${base}/latest/api/token`, {
    method: "PUT",
    headers: { "X-metadata-token-ttl-seconds": "300" },
  }, timeoutMs);
  const headers: Record<string, string> = { Accept: "application/json" };
  if (tokenResponse.ok) {
    headers["X-metadata-token"] = (await tokenResponse.text()).trim();
  } else {
    await tokenResponse.body?.cancel();
    if (tokenResponse.status >= 500) {
      throw new Transient(`metadata token request answered ${tokenResponse.status}`);
    }
    // 404/405: an MMDS in V1 mode (or a V1-only emulator); read without a token.
  }
  const response = await request(`${base}/`, { headers }, timeoutMs);
  const body = await response.text();
  if (response.status >= 500 || response.status === 401) {
    throw new Transient(`metadata request answered ${response.status}`);
  }
  if (!response.ok) {
    throw new OperatorError(
      `Cannot start: metadata at ${base}/ answered ${response.status}; check BEYOND_MMDS_URL and the MMDS configuration`,
    );
  }
  return body;
}

/** PURE: the MMDS JSON document → flat string settings (top-level scalar values only). */
export function parseMetadataDocument(body: string, source: string): Record<string, string> {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (error) {
    throw new OperatorError(
      `Cannot start: metadata from ${source} is not valid JSON; publish a JSON object of settings`,
      { cause: error, exitCode: 2 },
    );
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    throw new OperatorError(
      `Cannot start: metadata from ${source} is not a JSON object; publish an object such as {"POSTGRES_PASSWORD": "..."}`,
      { exitCode: 2 },
    );
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    if (value === null) continue;
    if (typeof value === "string") out[key] = value;
    else if (typeof value === "number" || typeof value === "boolean") out[key] = String(value);
    else if (/^(POSTGRES|BEYOND)_/.test(key)) {
      throw new OperatorError(
        `Cannot start: metadata key ${key} from ${source} holds ${
          Array.isArray(value) ? "an array" : "an object"
        }; give it a string value`,
        { exitCode: 2 },
      );
    }
  }
  return out;
}

/** Fetch and parse the metadata document, retrying transient failures until the deadline. */
export async function readMmds(
  base: string,
  options: MmdsOptions,
): Promise<Record<string, string>> {
  const sleep = options.sleep ?? defaultSleep;
  const timeoutMs = options.requestTimeoutMs ?? 2000;
  const url = base.replace(/\/+$/, "");
  const started = Date.now();
  let delay = 100;
  for (let attempt = 1;; attempt++) {
    try {
      return parseMetadataDocument(await fetchOnce(url, timeoutMs), url);
    } catch (error) {
      if (!(error instanceof Transient)) throw error;
      if (Date.now() - started + delay > options.deadlineMs) {
        throw new OperatorError(
          `Cannot start: metadata service ${url} unreachable after ${attempt} attempts (${error.message}); check BEYOND_MMDS_URL or the VM's MMDS route`,
          { cause: error, exitCode: 3 },
        );
      }
      if (attempt === 1 || attempt % 10 === 0) {
        log.warn(`metadata not available yet (${error.message}); retrying`);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}
