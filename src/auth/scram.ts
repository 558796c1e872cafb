/**
 * SCRAM-SHA-256 verifiers as PostgreSQL stores them:
 *   SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>
 * Computed here so that a plaintext password never reaches SQL text, a log line,
 * pg_stat_statements or a file: postgres stores a pre-computed verifier as is.
 */
import { hmacSha256 as hmac, sha256 } from "../util/crypto.ts";
import { saslprep } from "./saslprep.ts";

const enc = new TextEncoder();

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

/** PostgreSQL's rule: SASLprep when it succeeds, the raw bytes when it does not. */
export function normalizePassword(password: string): string {
  return saslprep(password) ?? password;
}

async function keys(password: string, salt: Uint8Array, iterations: number) {
  const base = await crypto.subtle.importKey(
    "raw",
    enc.encode(normalizePassword(password)),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const salted = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: "PBKDF2", hash: "SHA-256", salt: salt as BufferSource, iterations },
      base,
      256,
    ),
  );
  const clientKey = await hmac(salted, "Client Key");
  const storedKey = await sha256(clientKey);
  const serverKey = await hmac(salted, "Server Key");
  return { clientKey, storedKey, serverKey };
}

export interface ParsedVerifier {
  iterations: number;
  salt: Uint8Array;
  storedKey: string;
  serverKey: string;
}

export function parseVerifier(verifier: string): ParsedVerifier | undefined {
  const m = verifier.match(
    /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/,
  );
  if (!m) return undefined;
  return { iterations: Number(m[1]), salt: unb64(m[2]!), storedKey: m[3]!, serverKey: m[4]! };
}

export async function buildVerifier(
  password: string,
  options: { salt?: Uint8Array; iterations?: number } = {},
): Promise<string> {
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const iterations = options.iterations ?? 4096;
  const { storedKey, serverKey } = await keys(password, salt, iterations);
  return `SCRAM-SHA-256$${iterations}:${b64(salt)}$${b64(storedKey)}:${b64(serverKey)}`;
}

/** Whether `password` is the one `verifier` was made from (no write needed then). */
export async function verifierMatches(password: string, verifier: string | null): Promise<boolean> {
  const parsed = verifier ? parseVerifier(verifier) : undefined;
  if (!parsed) return false;
  const { storedKey, serverKey } = await keys(password, parsed.salt, parsed.iterations);
  return b64(storedKey) === parsed.storedKey && b64(serverKey) === parsed.serverKey;
}

// ---- client side (RFC 5802/7677), for our own connections -----------------------------

/** SCRAM-SHA-256 client exchange; `first()` → `final(serverFirst)` → `verify(serverFinal)`. */
export class ScramClient {
  readonly #password: string;
  readonly #nonce: string;
  /** PostgreSQL ignores the SCRAM user name (the startup message names the role). */
  readonly #user: string;
  #authMessage = "";
  #serverKey: Uint8Array | undefined;

  constructor(password: string, o: { nonce?: string; user?: string } = {}) {
    this.#password = password;
    this.#nonce = o.nonce ?? b64(crypto.getRandomValues(new Uint8Array(18)));
    this.#user = o.user ?? "";
  }

  /** client-first-message (GS2 header "n,," : no channel binding). */
  first(): string {
    return `n,,n=${this.#user},r=${this.#nonce}`;
  }

  async final(serverFirst: string): Promise<string> {
    const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
    const nonce = attrs["r"] ?? "";
    const salt = attrs["s"];
    const iterations = Number(attrs["i"]);
    if (
      !nonce.startsWith(this.#nonce) || !salt || !Number.isInteger(iterations) || iterations < 1
    ) {
      throw new Error("SCRAM: malformed server-first-message");
    }
    const { clientKey, storedKey, serverKey } = await keys(this.#password, unb64(salt), iterations);
    this.#serverKey = serverKey;
    const withoutProof = `c=biws,r=${nonce}`;
    this.#authMessage = `n=${this.#user},r=${this.#nonce},${serverFirst},${withoutProof}`;
    const signature = await hmac(storedKey, this.#authMessage);
    const proof = clientKey.map((b, i) => b ^ signature[i]!);
    return `${withoutProof},p=${b64(proof)}`;
  }

  async verify(serverFinal: string): Promise<void> {
    const v = serverFinal.split(",").find((kv) => kv.startsWith("v="))?.slice(2);
    if (!v || !this.#serverKey) throw new Error("SCRAM: malformed server-final-message");
    const expected = await hmac(this.#serverKey, this.#authMessage);
    if (b64(expected) !== v) throw new Error("SCRAM: the server's signature does not verify");
  }
}
