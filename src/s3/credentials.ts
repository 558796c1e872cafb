/**
 * Where the S3 client's credentials come from: a fixed key pair (with a session token when they
 * are temporary), or a source read again before what it gave expires — a JSON file the platform
 * rewrites, or an HTTP endpoint (container credentials). The owner supplies how a source is read
 * (wal/archive.ts: the file through the trust checks, the endpoint through our transport); this
 * module decides when: 5 minutes before the expiry, when the file changed (looked at no more than
 * every 10 s), and after the store called the credentials expired. No restart is needed.
 */
import type { Credentials } from "./sigv4.ts";

export interface CredentialSource {
  get(): Promise<Credentials>;
  /** The store refused what get() gave (expired, unknown key): read the source again. */
  invalidate(): void;
  /** False for a fixed key pair: nothing new to read, so an auth failure is final. */
  readonly refreshable: boolean;
}

/** What one read of a source gives. */
export interface Loaded {
  credentials: Credentials;
  /** Epoch ms; undefined: does not expire. */
  expires?: number;
}

export class CredentialsError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "CredentialsError";
  }
}

export function fixedCredentials(c: Credentials): CredentialSource {
  return { get: () => Promise.resolve(c), invalidate() {}, refreshable: false };
}

/**
 * PURE: the JSON shape instance metadata, container endpoints, `credential_process` and
 * `aws configure export-credentials` all use: AccessKeyId, SecretAccessKey, Token or
 * SessionToken, Expiration (ISO 8601). `where` names the source in the one-line error.
 */
export function parseCredentialDocument(text: string, where: string): Loaded {
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new CredentialsError(`${where} is not JSON; it must hold AccessKeyId, SecretAccessKey`, {
      cause: error,
    });
  }
  const str = (k: string) => (typeof doc?.[k] === "string" && doc[k] !== "" ? doc[k] : undefined);
  const accessKeyId = str("AccessKeyId");
  const secretAccessKey = str("SecretAccessKey");
  if (!accessKeyId || !secretAccessKey) {
    throw new CredentialsError(
      `${where} has no AccessKeyId and SecretAccessKey; it must hold them (and Token, Expiration for temporary credentials)`,
    );
  }
  const token = str("Token") ?? str("SessionToken");
  const expiration = str("Expiration");
  const expires = expiration === undefined ? undefined : Date.parse(expiration);
  if (expires !== undefined && Number.isNaN(expires)) {
    throw new CredentialsError(
      `${where}: Expiration ${JSON.stringify(expiration)} is not an ISO 8601 time`,
    );
  }
  return {
    credentials: { accessKeyId, secretAccessKey, ...(token ? { sessionToken: token } : {}) },
    ...(expires === undefined ? {} : { expires }),
  };
}

export interface RefreshOptions {
  /** Read again this long before the expiry (default 5 min). */
  aheadMs?: number;
  /** Whether the source changed since the last read (a file's mtime): asked at most every recheckMs. */
  changed?: () => boolean;
  recheckMs?: number;
  now?: () => number;
  /** A failed re-read while the old credentials still hold: said once, then kept using them. */
  warn?: (line: string) => void;
}

/** A source read again when its credentials are about to expire, changed, or were refused. */
export class RefreshingSource implements CredentialSource {
  readonly refreshable = true;
  readonly #load: () => Promise<Loaded>;
  readonly #o: Required<Omit<RefreshOptions, "changed" | "warn">> & RefreshOptions;
  #current: Loaded | undefined;
  #stale = false;
  #checkedAt = 0;
  #loading: Promise<Loaded> | undefined;
  #warned = false;

  constructor(load: () => Promise<Loaded>, o: RefreshOptions = {}) {
    this.#load = load;
    this.#o = { aheadMs: 5 * 60_000, recheckMs: 10_000, now: () => Date.now(), ...o };
  }

  invalidate(): void {
    this.#stale = true;
  }

  #due(now: number): boolean {
    const c = this.#current;
    if (!c || this.#stale) return true;
    if (c.expires !== undefined && now >= c.expires - this.#o.aheadMs) return true;
    if (this.#o.changed && now - this.#checkedAt >= this.#o.recheckMs) {
      this.#checkedAt = now;
      return this.#o.changed();
    }
    return false;
  }

  async get(): Promise<Credentials> {
    const now = this.#o.now();
    if (!this.#due(now)) return this.#current!.credentials;
    this.#loading ??= this.#load().finally(() => (this.#loading = undefined));
    try {
      const loaded = await this.#loading;
      this.#current = loaded;
      this.#stale = false;
      this.#checkedAt = now;
      this.#warned = false;
      return loaded.credentials;
    } catch (error) {
      const c = this.#current;
      // Still valid: keep going on them (the platform may be mid-rotation).
      if (c && !this.#stale && (c.expires === undefined || now < c.expires)) {
        if (!this.#warned) {
          this.#warned = true;
          this.#o.warn?.(
            `${error instanceof Error ? error.message : error}; using the credentials read before${
              c.expires === undefined
                ? ""
                : ` until they expire at ${new Date(c.expires).toISOString()}`
            }`,
          );
        }
        return c.credentials;
      }
      throw error;
    }
  }
}

/**
 * Read credentials from an HTTP endpoint (container credentials: ECS, EKS Pod Identity, a
 * platform agent), with `authorization` as its Authorization header when given.
 */
export function urlLoader(
  url: string,
  authorization: string | undefined,
  transport: { request(r: import("./http.ts").HttpRequest): Promise<Response> },
): () => Promise<Loaded> {
  return async () => {
    const u = new URL(url);
    let res: Response;
    try {
      res = await transport.request({
        method: "GET",
        url: u,
        headers: { accept: "application/json", ...(authorization ? { authorization } : {}) },
        idleMs: 5000,
        deadlineMs: 10_000,
      });
    } catch (error) {
      throw new Error(
        `cannot read credentials from ${u.origin}${u.pathname}: ${
          error instanceof Error ? error.message : error
        }`,
        { cause: error },
      );
    }
    const { readCapped } = await import("./body.ts");
    const text = new TextDecoder().decode(await readCapped(res.body, 64 * 1024));
    if (res.status !== 200) {
      const message = `credentials endpoint ${u.origin}${u.pathname} answered ${res.status}`;
      // 4xx: our request is wrong (a bad token); 5xx: it may answer later.
      if (res.status < 500) throw new CredentialsError(`${message}; check its token`);
      throw new Error(message);
    }
    return parseCredentialDocument(text, `the answer of ${u.origin}${u.pathname}`);
  };
}
