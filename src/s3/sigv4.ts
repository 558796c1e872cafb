/**
 * PURE (WebCrypto only): AWS Signature Version 4 for S3 requests. A small, fully tested
 * signer instead of an SDK: `beyond-pg archive` runs once per WAL segment and must start fast
 * (the S3 SDK alone takes ~100 ms to import).
 */

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

import { hex, hmacSha256, sha256Hex } from "../util/crypto.ts";

const enc = new TextEncoder();

/** RFC 3986 encoding as SigV4 wants it (S3: '/' kept in paths, not double-encoded). */
export function uriEncode(s: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of enc.encode(s)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === "/")) out += c;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

export function amzDate(now: Date): string {
  return now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

export interface SignInput {
  method: string;
  url: URL;
  /** Headers to sign (host is added). Names may be any case. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
  payloadHash: string;
}

/** The headers to send: the input's plus x-amz-date, (token) and Authorization. */
export async function sign(
  input: SignInput,
  creds: Credentials,
  region: string,
  o: { service?: string; now?: Date } = {},
): Promise<Record<string, string>> {
  const service = o.service ?? "s3";
  const date = amzDate(o.now ?? new Date());
  const day = date.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(input.headers)) headers[k.toLowerCase()] = v;
  headers["host"] = input.url.host;
  headers["x-amz-date"] = date;
  if (creds.sessionToken) headers["x-amz-security-token"] = creds.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names.map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const query = [...input.url.searchParams.entries()]
    .map(([k, v]) => [uriEncode(k, false), uriEncode(v, false)])
    .sort(([a, av], [b, bv]) => (a! < b! ? -1 : a! > b! ? 1 : av! < bv! ? -1 : av! > bv! ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const path = uriEncode(decodeURIComponent(input.url.pathname), true) || "/";
  const canonicalRequest = [
    input.method,
    path,
    query,
    canonicalHeaders,
    signedHeaders,
    input.payloadHash,
  ].join("\n");
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", date, scope, await sha256Hex(canonicalRequest)].join(
    "\n",
  );
  const kDate = await hmacSha256(`AWS4${creds.secretAccessKey}`, day);
  const kRegion = await hmacSha256(kDate, region);
  const kService = await hmacSha256(kRegion, service);
  const kSigning = await hmacSha256(kService, "aws4_request");
  const signature = hex(await hmacSha256(kSigning, stringToSign));
  const out: Record<string, string> = { ...input.headers, "x-amz-date": date };
  if (creds.sessionToken) out["x-amz-security-token"] = creds.sessionToken;
  out["authorization"] =
    `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return out;
}
