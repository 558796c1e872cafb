/**
 * PURE: the little of HTTP/1.1 the health server speaks. A request head is read up to a size
 * cap and parsed (GET and HEAD only; of the headers only Authorization is kept); a response is
 * one buffer with Content-Length and `Connection: close` (one request per connection).
 */

export const MAX_HEAD_BYTES = 8192;

export type HeadParse =
  | { kind: "need-more" }
  | { kind: "request"; method: "GET" | "HEAD"; path: string; authorization?: string }
  | { kind: "reject"; status: number; body: string; headers?: Record<string, string> };

/** A body sent from an open file as it is read (never whole in memory): its first `length` bytes. */
export interface FileBody {
  file: Deno.FsFile;
  length: number;
}

export interface HttpResponse {
  status: number;
  body: string | Uint8Array | FileBody;
  headers?: Record<string, string>;
}

export function isFileBody(body: HttpResponse["body"]): body is FileBody {
  return typeof body === "object" && !(body instanceof Uint8Array);
}

const reasons: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  401: "Unauthorized",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
  505: "HTTP Version Not Supported",
};

/** Index just past the blank line that ends the head (CRLF CRLF, or bare LF LF), or -1. */
export function headEnd(buf: Uint8Array): number {
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) {
    const next = buf[i + 1] === 13 ? i + 2 : i + 1;
    if (buf[next] === 10) return next + 1;
  }
  return -1;
}

function reject(status: number, body: string, headers?: Record<string, string>): HeadParse {
  return { kind: "reject", status, body, ...(headers ? { headers } : {}) };
}

/** The request in `buf` (everything read so far), bounded by `maxBytes`. */
export function parseHead(buf: Uint8Array, maxBytes = MAX_HEAD_BYTES): HeadParse {
  // Empty lines before the request line are allowed (RFC 9112 §2.2).
  let start = 0;
  while (buf[start] === 13 || buf[start] === 10) start++;
  const end = headEnd(buf.subarray(start));
  if (end === -1 || start + end > maxBytes) {
    return buf.length >= maxBytes
      ? reject(431, `request head larger than ${maxBytes} bytes\n`)
      : { kind: "need-more" };
  }
  const head = new TextDecoder("latin1").decode(buf.subarray(start, start + end));
  const line = head.slice(0, head.indexOf("\n")).replace(/\r$/, "");
  const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) (\S+) HTTP\/(\d)\.(\d)$/.exec(line);
  if (!m) return reject(400, "malformed request line\n");
  const [, method, target, major] = m;
  if (major !== "1") return reject(505, "HTTP/1.x only\n");
  if (method !== "GET" && method !== "HEAD") {
    return reject(405, "GET or HEAD only\n", { allow: "GET, HEAD" });
  }
  let path: string;
  if (target!.startsWith("/")) {
    path = target!.split(/[?#]/, 1)[0]!;
  } else {
    // absolute-form (a proxy's request): keep only the path
    const abs = /^https?:\/\/[^/?#]*([^?#]*)/i.exec(target!);
    if (!abs) return reject(400, "request target must be a path\n");
    path = abs[1] || "/";
  }
  const auth = /\r?\nauthorization:[ \t]*([^\r\n]*)/i.exec(head)?.[1]?.trim();
  return { kind: "request", method, path, ...(auth ? { authorization: auth } : {}) };
}

/**
 * The whole response; HEAD gets the same headers and no body; a FileBody's bytes are not in
 * it (the server sends them after it).
 */
export function renderResponse(res: HttpResponse, o: { head?: boolean } = {}): Uint8Array {
  const body = typeof res.body === "string"
    ? new TextEncoder().encode(res.body)
    : isFileBody(res.body)
    ? undefined
    : res.body;
  const headers: Record<string, string> = {
    "content-type": "text/plain; charset=utf-8",
    ...res.headers,
    "content-length": String(body?.length ?? (res.body as FileBody).length),
    "connection": "close",
  };
  const lines = [`HTTP/1.1 ${res.status} ${reasons[res.status] ?? "Unknown"}`];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  const headBytes = new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n");
  if (o.head || !body) return headBytes;
  const out = new Uint8Array(headBytes.length + body.length);
  out.set(headBytes);
  out.set(body, headBytes.length);
  return out;
}
