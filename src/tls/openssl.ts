/**
 * EFFECT: X.509 through the openssl CLI (no hand-rolled ASN.1): a self-signed certificate, a
 * certificate's expiry, fingerprint and signature algorithm, and whether a key belongs to a
 * certificate.
 *
 * The self-signed key is ECDSA P-256 signed with SHA-256, not Ed25519: SCRAM channel binding
 * (tls-server-end-point, which libpq uses by default over TLS) hashes the certificate with its
 * signature's digest, and Ed25519 has none — PostgreSQL 15 to 18 and libpq then fail with
 * "could not find digest for NID UNDEF", so a default `psql` could not connect to 5433.
 */
import type { Owner } from "../fs/identity.ts";
import { run } from "../process/spawner.ts";
import { OperatorError } from "../util/errors.ts";

/**
 * Files in a directory postgres can write are read (and written) by openssl running as
 * postgres (`as`): then a planted link reaches nothing postgres could not read itself.
 */
export interface AsUser {
  as?: Owner | undefined;
}

export interface CertInfo {
  notAfter: Date;
  /** e.g. "ecdsa-with-SHA256", "ED25519". */
  signatureAlgorithm: string;
  /** SHA-256 of the DER certificate, hex, colon-free lower case. */
  fingerprint: string;
  subject: string;
}

export async function certInfo(certPath: string, o: AsUser = {}): Promise<CertInfo> {
  const out = await run(
    "openssl",
    [
      "x509",
      "-in",
      certPath,
      "-noout",
      "-enddate",
      "-subject",
      "-fingerprint",
      "-sha256",
      "-text",
      "-certopt",
      "no_pubkey,no_sigdump,no_extensions",
    ],
    { check: false, ...o.as },
  );
  if (out.code !== 0) {
    throw new OperatorError(
      `${certPath} is not a readable PEM certificate (${out.stderr.trim().split("\n")[0]})`,
    );
  }
  const notAfter = new Date(out.stdout.match(/notAfter=(.*)/)?.[1] ?? "");
  const fingerprint = fingerprintFrom(out.stdout);
  const subject = out.stdout.match(/subject=\s*(.*)/)?.[1]?.trim() ?? "";
  if (Number.isNaN(notAfter.getTime()) || !fingerprint) {
    throw new OperatorError(`cannot read the expiry of ${certPath}`);
  }
  const signatureAlgorithm = out.stdout.match(/Signature Algorithm:\s*(\S+)/)?.[1] ?? "unknown";
  return { notAfter, fingerprint, subject, signatureAlgorithm };
}

/** The SHA-256 fingerprint in `openssl x509 -fingerprint` output: hex, colon-free lower case. */
export function fingerprintFrom(text: string): string {
  return (text.match(/Fingerprint=([0-9A-F:]+)/i)?.[1] ?? "").replaceAll(":", "").toLowerCase();
}

/** The public key of a certificate and of a private key must be the same. */
export async function keyMatchesCert(
  keyPath: string,
  certPath: string,
  o: AsUser = {},
): Promise<boolean> {
  const [fromKey, fromCert] = await Promise.all([
    run("openssl", ["pkey", "-in", keyPath, "-pubout"], { check: false, ...o.as }),
    run("openssl", ["x509", "-in", certPath, "-noout", "-pubkey"], { check: false, ...o.as }),
  ]);
  return fromKey.code === 0 && fromCert.code === 0 &&
    fromKey.stdout.trim() === fromCert.stdout.trim() &&
    fromKey.stdout.includes("BEGIN PUBLIC KEY");
}

export interface SelfSignedOptions extends AsUser {
  keyPath: string;
  certPath: string;
  commonName: string;
  dnsNames: string[];
  ipAddresses: string[];
  days: number;
}

export async function generateSelfSigned(o: SelfSignedOptions): Promise<void> {
  const san = [...o.dnsNames.map((n) => `DNS:${n}`), ...o.ipAddresses.map((ip) => `IP:${ip}`)].join(
    ",",
  );
  // The subject is a CN only; names and addresses clients verify are in the SAN.
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-sha256",
    "-nodes",
    "-keyout",
    o.keyPath,
    "-out",
    o.certPath,
    "-days",
    String(o.days),
    "-subj",
    `/CN=${o.commonName.replace(/[/\\=,+]/g, "_")}`,
    "-addext",
    `subjectAltName=${san}`,
    "-addext",
    "basicConstraints=critical,CA:FALSE",
    "-addext",
    "keyUsage=critical,digitalSignature",
    "-addext",
    "extendedKeyUsage=serverAuth",
  ], { ...o.as });
}

/** Signature algorithms without a digest break SCRAM channel binding on direct connections. */
export function breaksChannelBinding(signatureAlgorithm: string): boolean {
  return /^(ED25519|ED448)$/i.test(signatureAlgorithm);
}
