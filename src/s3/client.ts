/**
 * EFFECT: a small S3 client (SigV4 over our own HTTP/1.1 transport, http.ts, which pools
 * connections): put (optionally only-if-absent), head, get, list, delete, multipart upload.
 * Every request has an idle timeout (no byte sent or received for that long), not a limit on
 * the whole request: a slow store that keeps moving bytes is never cut off, a hung one fails
 * within the idle timeout. Errors are S3Error with an operator-readable one-line message and a
 * `transient` flag (network trouble, 5xx, 429, timeouts) that retry policies use. Every answer
 * read into memory has a byte cap (body.ts): objects (`get`, 1 MiB unless the caller allows
 * more), listing pages, error and multipart answers.
 */
import { BodyTooLarge, readCapped } from "./body.ts";
import { CredentialsError, type CredentialSource, fixedCredentials } from "./credentials.ts";
import { HttpError, HttpTransport } from "./http.ts";
import {
  backoffMs,
  DEFAULT_RETRY,
  EXPIRED_CODES,
  RETRY_REASONS,
  type RetryPolicy,
  type RetryReason,
  retryReason,
} from "./retry.ts";
import { type Credentials, sign, uriEncode } from "./sigv4.ts";
import { ClockSkew, describeSkew } from "./skew.ts";
import { type Sse, sseHeaders } from "./sse.ts";
import { sha256Hex } from "../util/crypto.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import {
  type ListedObject,
  type ListedUpload,
  parseDeleteResult,
  parseList,
  parseUploads,
  tag,
} from "./xml.ts";

export type { ListedUpload, RetryReason, Sse };

export interface S3Config {
  /** e.g. http://127.0.0.1:7480 or https://s3.eu-west-1.amazonaws.com */
  endpoint: string;
  region: string;
  bucket: string;
  /** Path-style addressing (the default for custom endpoints). */
  pathStyle: boolean;
  /** A fixed key pair, or a source read again before its credentials expire (credentials.ts). */
  credentials: Credentials | CredentialSource;
  /** Server-side encryption of what we store (sse.ts). */
  sse?: Sse;
  /** x-amz-storage-class of what we store (STANDARD when unset). */
  storageClass?: string;
  /** Attempts and backoff (retry.ts DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
  /** Warnings (a skewed clock, credentials that could not be re-read): log.warn by default. */
  warn?: (line: string) => void;
  /** Seams for tests: this machine's clock (a VM booted wrong), jitter, the backoff's sleep. */
  now?: () => number;
  random?: () => number;
  sleep?: (ms: number) => Promise<unknown>;
  /**
   * No byte sent or received for this long → the request fails (transient). Default 30 s.
   * Requests that pass their own `timeoutMs` use theirs.
   */
  idleMs?: number;
  /** @deprecated was a limit on the whole request; now the idle timeout when idleMs is unset. */
  timeoutMs?: number;
  /** TCP connect and TLS handshake. Default 10 s. */
  connectMs?: number;
  /** Idle keep-alive connections kept for reuse (default 8; 0: a new connection per request). */
  maxIdleConnections?: number;
  /** PEM CA certificates to trust in addition to the system's (self-hosted stores). */
  caCerts?: string[];
  /**
   * How the owner of this client names what an operator fixes (its setting names, say): the
   * client itself knows no settings, so its errors say "check <endpoint> and the network".
   */
  hints?: Partial<S3Hints>;
}

export interface S3Hints {
  /** Where the endpoint is set. */
  endpoint: string;
  /** Where the bucket is named. */
  bucket: string;
  /** Where the credentials are set. */
  credentials: string;
}

const GENERIC_HINTS: S3Hints = {
  endpoint: "the S3 endpoint",
  bucket: "the bucket name",
  credentials: "the access key and the secret key",
};

/** The idle timeout when the config sets none. */
export const DEFAULT_IDLE_MS = 30_000;
/**
 * Completing a multipart upload: the store assembles the parts before it answers, and sends
 * nothing meanwhile (or only whitespace, as AWS does).
 */
const COMPLETE_IDLE_MS = 300_000;

export class S3Error extends Error {
  readonly status: number;
  readonly code: string;
  readonly transient: boolean;

  constructor(
    message: string,
    o: { status?: number; code?: string; transient: boolean; cause?: unknown },
  ) {
    super(message, { cause: o.cause });
    this.name = "S3Error";
    this.status = o.status ?? 0;
    this.code = o.code ?? "";
    this.transient = o.transient;
  }
}

/** How far S3 lets a request's date be from its clock. */
const SKEW_LIMIT_MS = 15 * 60_000;

/** `get`'s cap unless the caller passes one: manifests, owner records. */
export const SMALL_OBJECT_BYTES = 1 << 20;
/** One page of a listing (1000 keys of XML are ~350 KiB). */
export const LIST_PAGE_BYTES = 16 << 20;
/** Error documents and multipart answers. */
const REPLY_BYTES = 1 << 20;

/** S3Error.code of a transport failure. */
const TRANSPORT_CODES: Record<HttpError["kind"], string> = {
  connect: "ConnectFailed",
  tls: "TlsFailed",
  idle: "IdleTimeout",
  deadline: "DeadlineExceeded",
  closed: "ConnectionClosed",
  protocol: "BadResponse",
};

export interface HeadResult {
  size: number;
  etag: string;
  metadata: Record<string, string>;
}

/** What the client did, for metrics: requests sent, retries by reason, and give-ups. */
export interface S3Stats {
  requests: number;
  retries: Record<RetryReason, number>;
  /** Operations that still failed after their last attempt (a retryable failure each time). */
  failures: number;
}

/** Options of one request (see S3Client.request). */
export interface RequestOptions {
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** The idle timeout of this request (default: the client's). */
  timeoutMs?: number;
  /** A limit on the whole request, answer body included: only where a caller wants one. */
  deadlineMs?: number;
  signal?: AbortSignal;
  /**
   * SHA-256 of the body, hex, when the caller has it (computed off the event loop): the
   * store checks the body against it (SigV4), so a corrupted upload is refused.
   */
  payloadHash?: string;
  /**
   * Encryption headers to add: `store` (PUT, CreateMultipartUpload: SSE and storage class),
   * `read` (GET, HEAD, UploadPart: the SSE-C key).
   */
  sse?: "store" | "read";
}

function metadataOf(res: Response): Record<string, string> {
  const metadata: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    if (k.startsWith("x-amz-meta-")) metadata[k.slice(11)] = v;
  });
  return metadata;
}

/** Read a small answer to its end (the connection is then reused); past 64 KiB, hang up. */
async function drain(res: Response): Promise<void> {
  await readCapped(res.body, 64 * 1024).catch(() => {});
}

/** The MD5 S3 wants on a multi-object delete (and takes on any PUT). */
export async function md5Base64(data: Uint8Array): Promise<string> {
  // WebCrypto has no MD5; node:crypto does (and Deno implements it natively).
  const { createHash } = await import("node:crypto");
  return createHash("md5").update(data).digest("base64");
}

export class S3Client {
  readonly config: S3Config;
  /** No byte sent or received for this long → a request fails. */
  readonly idleMs: number;
  readonly stats: S3Stats = {
    requests: 0,
    retries: Object.fromEntries(RETRY_REASONS.map((r) => [r, 0])) as Record<RetryReason, number>,
    failures: 0,
  };
  /** This machine's clock against the store's (skew.ts). */
  readonly skew: ClockSkew;
  readonly #hints: S3Hints;
  readonly #http: HttpTransport;
  readonly #creds: CredentialSource;
  readonly #retry: RetryPolicy;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #sleep: (ms: number) => Promise<unknown>;
  /** The SSE-C key's MD5 is computed once, before the first request. */
  #ready: Promise<void> | undefined;
  #sse: Sse | undefined;

  constructor(config: S3Config) {
    this.config = config;
    this.#sse = config.sse;
    this.idleMs = config.idleMs ?? config.timeoutMs ?? DEFAULT_IDLE_MS;
    this.#hints = { ...GENERIC_HINTS, ...config.hints };
    this.#http = new HttpTransport({
      idleMs: this.idleMs,
      ...(config.caCerts?.length ? { caCerts: config.caCerts } : {}),
      ...(config.connectMs === undefined ? {} : { connectMs: config.connectMs }),
      ...(config.maxIdleConnections === undefined ? {} : { maxIdle: config.maxIdleConnections }),
    });
    if (config.sse?.kind === "c" && !config.sse.md5) {
      const sse = config.sse;
      this.#ready = md5Base64(Uint8Array.from(atob(sse.key), (ch) => ch.charCodeAt(0))).then(
        (md5) => void (this.#sse = { ...sse, md5 }),
      );
    }
    const c = config.credentials;
    this.#creds = "get" in c ? c : fixedCredentials(c);
    this.#retry = { ...DEFAULT_RETRY, ...config.retry };
    this.#now = config.now ?? (() => Date.now());
    this.#random = config.random ?? Math.random;
    this.#sleep = config.sleep ?? sleep;
    const warn = config.warn ?? ((line: string) => log.warn(`s3: ${line}`));
    this.skew = new ClockSkew(`the S3 endpoint ${config.endpoint}`, {
      warn,
      info: (line) => log.info(`s3: ${line}`),
    });
  }

  /** TCP connections opened so far (reuse shows as requests > connections). */
  get connections(): number {
    return this.#http.connections;
  }

  /** Retries in all (every reason). */
  get retries(): number {
    return Object.values(this.stats.retries).reduce((a, b) => a + b, 0);
  }

  /** Close the idle connections (a client that is done; requests still work after). */
  close(): void {
    this.#http.close();
  }

  url(key: string, query: Record<string, string> = {}): URL {
    const base = new URL(this.config.endpoint);
    const path = `/${key.split("/").map((p) => uriEncode(p, false)).join("/")}`;
    const url = this.config.pathStyle
      ? new URL(`${base.origin}/${this.config.bucket}${path}`)
      : new URL(`${base.protocol}//${this.config.bucket}.${base.host}${path}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  /**
   * One request, sent again on a retryable failure (retry.ts) until its head is in: 5xx,
   * throttling, resets, idle timeouts. The answer's body is the caller's to read.
   */
  request(method: string, key: string, o: RequestOptions = {}): Promise<Response> {
    return this.#retrying(() => this.#send(method, key, o), o.signal);
  }

  /**
   * Run `op` (one request and the reading of its answer) until it succeeds, fails in a way no
   * retry helps, or runs out of attempts. Waits with full jitter between attempts; a skewed
   * clock or expired credentials are corrected (#send) and retried at once, once each.
   */
  async #retrying<T>(op: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    let immediate = new Set<RetryReason>();
    for (let failed = 0;;) {
      try {
        return await op();
      } catch (error) {
        const why = error instanceof S3Error
          ? retryReason(error, {
            refreshableCredentials: this.#creds.refreshable,
          })
          : undefined;
        const once = why === "skew" || why === "credentials";
        failed++;
        if (
          !why || signal?.aborted || failed >= this.#retry.attempts ||
          (once && immediate.has(why))
        ) {
          if (why) this.stats.failures++;
          throw error;
        }
        this.stats.retries[why]++;
        if (why === "credentials") this.#creds.invalidate();
        if (once) immediate = new Set([...immediate, why]);
        else await this.#sleep(backoffMs(failed, this.#retry, this.#random));
      }
    }
  }

  /** One signed exchange; an answer of 300 or more (but a 404 for GET/HEAD) is an S3Error. */
  async #send(method: string, key: string, o: RequestOptions): Promise<Response> {
    if (this.#ready) await this.#ready;
    const url = this.url(key, o.query);
    const body = o.body;
    const payloadHash = o.payloadHash ?? await sha256Hex(body ?? new Uint8Array(0));
    const unsigned: Record<string, string> = {
      ...o.headers,
      ...(this.#sse && o.sse ? sseHeaders(this.#sse, o.sse) : {}),
      ...(o.sse === "store" && this.config.storageClass
        ? { "x-amz-storage-class": this.config.storageClass }
        : {}),
      "x-amz-content-sha256": payloadHash,
    };
    // Signed as the transport sends it (S3 wants a length on every PUT and POST).
    if (body || method === "PUT" || method === "POST") {
      unsigned["content-length"] = String(body?.length ?? 0);
    }
    let credentials: Credentials;
    try {
      credentials = await this.#creds.get();
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new S3Error(
        `cannot read the S3 credentials (${why}); check ${this.#hints.credentials}`,
        {
          code: "CredentialsUnavailable",
          transient: !(error instanceof CredentialsError),
          cause: error,
        },
      );
    }
    const sentAt = this.#now();
    const headers = await sign(
      { method, url, headers: unsigned, payloadHash },
      credentials,
      this.config.region,
      { now: new Date(sentAt + this.skew.offsetMs) },
    );
    const where = this.#where(method, key);
    this.stats.requests++;
    const res = await this.#http.request({
      method,
      url,
      headers,
      ...(body ? { body } : {}),
      idleMs: o.timeoutMs ?? this.idleMs,
      ...(o.deadlineMs === undefined ? {} : { deadlineMs: o.deadlineMs }),
      ...(o.signal ? { signal: o.signal } : {}),
      wrapError: (error) => this.#transportError(error, where),
    });
    this.skew.observe(res.headers.get("date"), (sentAt + this.#now()) / 2);
    if (
      res.status >= 300 && !(method === "HEAD" && res.status === 404) &&
      !(method === "GET" && res.status === 404)
    ) {
      const text = await this.#text(res, REPLY_BYTES, where).catch(() => "");
      // A HEAD answer has no body: a 403 to a clock 15 minutes off is the clock.
      const skewed = res.status === 403 && Math.abs(this.skew.measured) >= SKEW_LIMIT_MS;
      const code = tag(text, "Code") ??
        (res.status === 404 ? "NotFound" : res.headers.get("x-amz-error-code") ??
          (skewed ? "RequestTimeTooSkewed" : res.statusText));
      throw new S3Error(this.#explain(code, res.status, where, tag(text, "Message")), {
        status: res.status,
        code,
        transient: res.status >= 500 || res.status === 429 || res.status === 408 ||
          EXPIRED_CODES.has(code),
      });
    }
    return res;
  }

  /** The body, at most `limit` bytes: past it, a non-transient S3Error (the store is wrong). */
  async #read(res: Response, limit: number, where: string): Promise<Uint8Array<ArrayBuffer>> {
    const length = res.headers.get("content-length");
    try {
      return await readCapped(res.body, limit, {
        ...(length === null ? {} : { declared: Number(length) }),
      });
    } catch (error) {
      if (!(error instanceof BodyTooLarge)) throw error;
      throw new S3Error(
        `S3 ${where} answered with ${
          error.declared === undefined ? `more than ${limit}` : error.declared
        } bytes where beyond-pg stores at most ${limit}; remove or replace that object, or check that ${this.#hints.endpoint} is the right store`,
        { status: res.status, code: "BodyTooLarge", transient: false, cause: error },
      );
    }
  }

  async #text(res: Response, limit: number, where: string): Promise<string> {
    return new TextDecoder().decode(await this.#read(res, limit, where));
  }

  /** A transport failure, for an operator: always transient (the store may come back). */
  #transportError(error: HttpError, where: string): S3Error {
    const endpoint = this.config.endpoint;
    const stalled = error.kind === "idle" || error.kind === "deadline";
    return new S3Error(
      stalled
        ? `the S3 endpoint ${endpoint} stalled (${where}: ${error.message}); check that the store is up and not overloaded, and the network`
        : `cannot reach the S3 endpoint ${endpoint} (${where}: ${error.message}); check ${this.#hints.endpoint} and the network`,
      { transient: true, code: TRANSPORT_CODES[error.kind], cause: error },
    );
  }

  #where(method: string, key: string): string {
    return `${method} s3://${this.config.bucket}/${key}`;
  }

  #explain(code: string, status: number, where: string, message: string | undefined): string {
    if (code === "NoSuchBucket") {
      return `bucket ${this.config.bucket} does not exist at ${this.config.endpoint}; create it or fix ${this.#hints.bucket}`;
    }
    if (code === "RequestTimeTooSkewed") {
      return `S3 refused ${where}: this machine's clock is ${
        describeSkew(this.skew.measured)
      } the S3 endpoint ${this.config.endpoint}'s (RequestTimeTooSkewed); fix the clock (NTP, or the VM's clock source)`;
    }
    if (EXPIRED_CODES.has(code)) {
      return `S3 refused the credentials for ${where} as expired (${code}); check ${this.#hints.credentials}: temporary credentials must be renewed before they expire`;
    }
    if (
      code === "InvalidAccessKeyId" || code === "SignatureDoesNotMatch" ||
      code === "AccessDenied" || status === 403
    ) {
      return `S3 refused the credentials for ${where} (${code}); check ${this.#hints.credentials}`;
    }
    return `S3 ${where} answered ${status} ${code}${message ? `: ${message}` : ""}`;
  }

  /** Store an object. `ifAbsent`: only if no object has the key (412 → returns "exists"). */
  async put(
    key: string,
    body: Uint8Array,
    o: {
      metadata?: Record<string, string>;
      ifAbsent?: boolean;
      contentType?: string;
      payloadHash?: string;
    } = {},
  ): Promise<{ etag: string } | "exists"> {
    const headers: Record<string, string> = {
      "content-type": o.contentType ?? "application/octet-stream",
    };
    // The signed payload hash already makes the store verify the body; MD5 only without it.
    if (!o.payloadHash) headers["content-md5"] = await md5Base64(body);
    for (const [k, v] of Object.entries(o.metadata ?? {})) headers[`x-amz-meta-${k}`] = v;
    // Retrying a PUT is safe: a conditional one that did land answers 412 ("exists"), and the
    // caller compares what is there (wal/archive.ts); an unconditional one writes the same.
    if (o.ifAbsent) headers["if-none-match"] = "*";
    try {
      const res = await this.request("PUT", key, {
        headers,
        sse: "store",
        body,
        ...(o.payloadHash ? { payloadHash: o.payloadHash } : {}),
      });
      await drain(res);
      return { etag: (res.headers.get("etag") ?? "").replaceAll('"', "") };
    } catch (error) {
      if (error instanceof S3Error && error.status === 412) return "exists";
      throw error;
    }
  }

  async head(key: string): Promise<HeadResult | undefined> {
    const res = await this.request("HEAD", key, { sse: "read" });
    await drain(res);
    if (res.status === 404) return undefined;
    return {
      size: Number(res.headers.get("content-length") ?? 0),
      etag: (res.headers.get("etag") ?? "").replaceAll('"', ""),
      metadata: metadataOf(res),
    };
  }

  /**
   * The object's bytes and metadata, or undefined when there is none. An object larger than
   * `maxBytes` (default 1 MiB: manifests, owner records) is an S3Error (not transient), read
   * no further than that. `timeoutMs`: this request's idle timeout (default the client's). A
   * failure while the body streams is retried too.
   */
  get(
    key: string,
    timeoutMs?: number,
    { maxBytes = SMALL_OBJECT_BYTES }: { maxBytes?: number } = {},
  ): Promise<{ body: Uint8Array; metadata: Record<string, string> } | undefined> {
    return this.#retrying(async () => {
      const res = await this.#send("GET", key, {
        sse: "read",
        ...(timeoutMs ? { timeoutMs } : {}),
      });
      if (res.status === 404) {
        await drain(res);
        return undefined;
      }
      const metadata = metadataOf(res);
      return { body: await this.#read(res, maxBytes, this.#where("GET", key)), metadata };
    });
  }

  /**
   * A streaming GET (base backups), or undefined. Each read of the stream has the idle timeout
   * (`timeoutMs`, default the client's); there is no limit on the whole download. `range`:
   * from byte `start` (inclusive) to `end` (exclusive), for a download that resumes or runs
   * in parallel; `etag` makes the store refuse (412) an object that changed meanwhile.
   */
  async getStream(
    key: string,
    timeoutMs?: number,
    o: { range?: { start: number; end?: number }; etag?: string; signal?: AbortSignal } = {},
  ): Promise<ReadableStream<Uint8Array> | undefined> {
    const headers: Record<string, string> = {};
    if (o.range) {
      headers["range"] = `bytes=${o.range.start}-${
        o.range.end === undefined ? "" : o.range.end - 1
      }`;
    }
    if (o.etag) headers["if-match"] = `"${o.etag}"`;
    const res = await this.request("GET", key, {
      headers,
      sse: "read",
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
    if (res.status === 404) {
      await drain(res);
      return undefined;
    }
    return res.body ?? undefined;
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      const query: Record<string, string> = { "list-type": "2", prefix };
      if (token) query["continuation-token"] = token;
      const page = await this.#retrying(async () => {
        const res = await this.#send("GET", "", { query });
        return parseList(await this.#text(res, LIST_PAGE_BYTES, this.#where("LIST", prefix)));
      });
      out.push(...page.objects);
      token = page.next;
    } while (token);
    return out;
  }

  async delete(key: string): Promise<void> {
    const res = await this.request("DELETE", key);
    await drain(res);
  }

  /**
   * Delete many keys, up to 1,000 per request (DeleteObjects). A key already gone is fine;
   * a key the store would not delete is an S3Error naming the first one.
   */
  async deleteMany(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>true</Quiet>${
        batch.map((k) => `<Object><Key>${escapeXml(k)}</Key></Object>`).join("")
      }</Delete>`;
      const body = new TextEncoder().encode(xml);
      const md5 = await md5Base64(body);
      const failed = await this.#retrying(async () => {
        const res = await this.#send("POST", "", {
          query: { delete: "" },
          headers: { "content-md5": md5, "content-type": "application/xml" },
          body,
        });
        return parseDeleteResult(await this.#text(res, LIST_PAGE_BYTES, this.#where("DELETE", "")));
      });
      if (failed.length) {
        const f = failed[0]!;
        throw new S3Error(
          `S3 did not delete ${failed.length} of ${batch.length} objects; the first: s3://${this.config.bucket}/${f.key} (${f.code}${
            f.message ? `: ${f.message}` : ""
          })`,
          { code: f.code, transient: false },
        );
      }
    }
  }

  async createBucket(): Promise<void> {
    try {
      const res = await this.request("PUT", "");
      await drain(res);
    } catch (error) {
      if (
        !(error instanceof S3Error &&
          (error.code === "BucketAlreadyOwnedByYou" || error.code === "BucketAlreadyExists"))
      ) {
        throw error;
      }
    }
  }

  // ---- multipart -------------------------------------------------------------------------

  /**
   * Start a multipart upload. A retried start after a lost answer leaves an upload nobody
   * completes: `backups prune` and the supervisor abort those after a day.
   */
  async createMultipart(key: string, metadata: Record<string, string> = {}): Promise<string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) headers[`x-amz-meta-${k}`] = v;
    return await this.#retrying(async () => {
      const res = await this.#send("POST", key, { query: { uploads: "" }, headers, sse: "store" });
      const id = tag(await this.#text(res, REPLY_BYTES, this.#where("POST", key)), "UploadId");
      if (!id) {
        throw new S3Error(`S3 did not return an upload id for ${key}`, {
          status: 500,
          transient: true,
        });
      }
      return id;
    });
  }

  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Uint8Array,
    payloadHash?: string,
  ): Promise<string> {
    const res = await this.request("PUT", key, {
      query: { partNumber: String(partNumber), uploadId },
      headers: payloadHash ? {} : { "content-md5": await md5Base64(body) },
      sse: "read",
      ...(payloadHash ? { payloadHash } : {}),
      body,
    });
    await drain(res);
    return res.headers.get("etag") ?? "";
  }

  /**
   * Complete a multipart upload. Retried like the rest; an attempt after one whose answer was
   * lost finds no upload (NoSuchUpload): then it did complete, and the caller checks the
   * object's size (backup/basebackup.ts does).
   */
  async completeMultipart(key: string, uploadId: string, etags: string[]): Promise<void> {
    const xml = `<CompleteMultipartUpload>${
      etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join(
        "",
      )
    }</CompleteMultipartUpload>`;
    let attempt = 0;
    await this.#retrying(async () => {
      attempt++;
      try {
        const res = await this.#send("POST", key, {
          query: { uploadId },
          body: new TextEncoder().encode(xml),
          timeoutMs: Math.max(this.idleMs, COMPLETE_IDLE_MS),
        });
        const text = await this.#text(res, REPLY_BYTES, this.#where("POST", key));
        if (/<Error>/.test(text)) {
          // AWS may answer 200 and put the error in the body.
          throw new S3Error(`completing the upload of ${key} failed: ${tag(text, "Code")}`, {
            status: 500,
            code: tag(text, "Code") ?? "InternalError",
            transient: true,
          });
        }
      } catch (error) {
        if (attempt > 1 && error instanceof S3Error && error.code === "NoSuchUpload") return;
        throw error;
      }
    });
  }

  /** Abort a multipart upload (its parts are freed); one already gone is fine. */
  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      const res = await this.request("DELETE", key, { query: { uploadId } });
      await drain(res);
    } catch (error) {
      if (error instanceof S3Error && error.code === "NoSuchUpload") return;
      throw error;
    }
  }

  /** Multipart uploads started under `prefix` and neither completed nor aborted. */
  async listMultipartUploads(prefix: string): Promise<ListedUpload[]> {
    const out: ListedUpload[] = [];
    let marker: { key: string; id: string } | undefined;
    do {
      const query: Record<string, string> = { uploads: "", prefix };
      if (marker) {
        query["key-marker"] = marker.key;
        query["upload-id-marker"] = marker.id;
      }
      const page = await this.#retrying(async () => {
        const res = await this.#send("GET", "", { query });
        return parseUploads(
          await this.#text(res, LIST_PAGE_BYTES, this.#where("LIST uploads", prefix)),
        );
      });
      out.push(...page.uploads);
      marker = page.next;
    } while (marker);
    return out;
  }
}

/** Keys per DeleteObjects request (S3's limit). */
export const DELETE_BATCH = 1000;

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
