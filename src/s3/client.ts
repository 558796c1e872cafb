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
import { HttpError, HttpTransport } from "./http.ts";
import { type Credentials, sign, uriEncode } from "./sigv4.ts";
import { sha256Hex } from "../util/crypto.ts";
import { type ListedObject, parseList, tag } from "./xml.ts";

export interface S3Config {
  /** e.g. http://127.0.0.1:7480 or https://s3.eu-west-1.amazonaws.com */
  endpoint: string;
  region: string;
  bucket: string;
  /** Path-style addressing (the default for custom endpoints). */
  pathStyle: boolean;
  credentials: Credentials;
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

/** Read a small answer to its end (the connection is then reused); past 64 KiB, hang up. */
async function drain(res: Response): Promise<void> {
  await readCapped(res.body, 64 * 1024).catch(() => {});
}

async function md5Base64(data: Uint8Array): Promise<string> {
  // WebCrypto has no MD5; node:crypto does (and Deno implements it natively).
  const { createHash } = await import("node:crypto");
  return createHash("md5").update(data).digest("base64");
}

export class S3Client {
  readonly config: S3Config;
  /** No byte sent or received for this long → a request fails. */
  readonly idleMs: number;
  readonly #hints: S3Hints;
  readonly #http: HttpTransport;

  constructor(config: S3Config) {
    this.config = config;
    this.idleMs = config.idleMs ?? config.timeoutMs ?? DEFAULT_IDLE_MS;
    this.#hints = { ...GENERIC_HINTS, ...config.hints };
    this.#http = new HttpTransport({
      idleMs: this.idleMs,
      ...(config.caCerts?.length ? { caCerts: config.caCerts } : {}),
      ...(config.connectMs === undefined ? {} : { connectMs: config.connectMs }),
      ...(config.maxIdleConnections === undefined ? {} : { maxIdle: config.maxIdleConnections }),
    });
  }

  /** TCP connections opened so far (reuse shows as requests > connections). */
  get connections(): number {
    return this.#http.connections;
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

  async request(
    method: string,
    key: string,
    o: {
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
    } = {},
  ): Promise<Response> {
    const url = this.url(key, o.query);
    const body = o.body;
    const payloadHash = o.payloadHash ?? await sha256Hex(body ?? new Uint8Array(0));
    const unsigned: Record<string, string> = { ...o.headers, "x-amz-content-sha256": payloadHash };
    // Signed as the transport sends it (S3 wants a length on every PUT and POST).
    if (body || method === "PUT" || method === "POST") {
      unsigned["content-length"] = String(body?.length ?? 0);
    }
    const headers = await sign(
      { method, url, headers: unsigned, payloadHash },
      this.config.credentials,
      this.config.region,
    );
    const where = this.#where(method, key);
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
    if (
      res.status >= 300 && !(method === "HEAD" && res.status === 404) &&
      !(method === "GET" && res.status === 404)
    ) {
      const text = await this.#text(res, REPLY_BYTES, where).catch(() => "");
      const code = tag(text, "Code") ?? (res.status === 404 ? "NotFound" : res.statusText);
      throw new S3Error(this.#explain(code, res.status, where, tag(text, "Message")), {
        status: res.status,
        code,
        transient: res.status >= 500 || res.status === 429 || res.status === 408,
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
    if (o.ifAbsent) headers["if-none-match"] = "*";
    try {
      const res = await this.request("PUT", key, {
        headers,
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
    const res = await this.request("HEAD", key);
    await drain(res);
    if (res.status === 404) return undefined;
    const metadata: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      if (k.startsWith("x-amz-meta-")) metadata[k.slice(11)] = v;
    });
    return {
      size: Number(res.headers.get("content-length") ?? 0),
      etag: (res.headers.get("etag") ?? "").replaceAll('"', ""),
      metadata,
    };
  }

  /**
   * The object's bytes and metadata, or undefined when there is none. An object larger than
   * `maxBytes` (default 1 MiB: manifests, owner records) is an S3Error (not transient), read
   * no further than that. `timeoutMs`: this request's idle timeout (default the client's).
   */
  async get(
    key: string,
    timeoutMs?: number,
    { maxBytes = SMALL_OBJECT_BYTES }: { maxBytes?: number } = {},
  ): Promise<{ body: Uint8Array; metadata: Record<string, string> } | undefined> {
    const res = await this.request("GET", key, { ...(timeoutMs ? { timeoutMs } : {}) });
    if (res.status === 404) {
      await drain(res);
      return undefined;
    }
    const metadata: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      if (k.startsWith("x-amz-meta-")) metadata[k.slice(11)] = v;
    });
    return { body: await this.#read(res, maxBytes, this.#where("GET", key)), metadata };
  }

  /**
   * A streaming GET (base backups), or undefined. Each read of the stream has the idle timeout
   * (`timeoutMs`, default the client's); there is no limit on the whole download.
   */
  async getStream(
    key: string,
    timeoutMs?: number,
  ): Promise<ReadableStream<Uint8Array> | undefined> {
    const res = await this.request("GET", key, { ...(timeoutMs ? { timeoutMs } : {}) });
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
      const res = await this.request("GET", "", { query });
      const page = parseList(await this.#text(res, LIST_PAGE_BYTES, this.#where("LIST", prefix)));
      out.push(...page.objects);
      token = page.next;
    } while (token);
    return out;
  }

  async delete(key: string): Promise<void> {
    const res = await this.request("DELETE", key);
    await drain(res);
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

  async createMultipart(key: string, metadata: Record<string, string> = {}): Promise<string> {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) headers[`x-amz-meta-${k}`] = v;
    const res = await this.request("POST", key, { query: { uploads: "" }, headers });
    const id = tag(await this.#text(res, REPLY_BYTES, this.#where("POST", key)), "UploadId");
    if (!id) throw new S3Error(`S3 did not return an upload id for ${key}`, { transient: true });
    return id;
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
      ...(payloadHash ? { payloadHash } : {}),
      body,
    });
    await drain(res);
    return res.headers.get("etag") ?? "";
  }

  async completeMultipart(key: string, uploadId: string, etags: string[]): Promise<void> {
    const xml = `<CompleteMultipartUpload>${
      etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${e}</ETag></Part>`).join(
        "",
      )
    }</CompleteMultipartUpload>`;
    const res = await this.request("POST", key, {
      query: { uploadId },
      body: new TextEncoder().encode(xml),
      timeoutMs: Math.max(this.idleMs, COMPLETE_IDLE_MS),
    });
    const text = await this.#text(res, REPLY_BYTES, this.#where("POST", key));
    if (/<Error>/.test(text)) {
      throw new S3Error(`completing the upload of ${key} failed: ${tag(text, "Code")}`, {
        transient: true,
      });
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    const res = await this.request("DELETE", key, { query: { uploadId } });
    await drain(res);
  }
}
