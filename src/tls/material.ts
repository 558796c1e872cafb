/**
 * EFFECT: which certificate and key postgres and PgBouncer use, in the design's order:
 *
 *   1. user-managed   PGDATA/beyond/.user-managed → PGDATA/beyond/server.{crt,key}, as is
 *   2. platform       <BEYOND_PG_TLS_DIR>/{cert,key,ca}.pem (default /run/beyond/tls)
 *   3. self-signed    PGDATA/beyond/server.{crt,key}: ECDSA P-256 (see openssl.ts for why
 *                     not Ed25519), CN = hostname, one year,
 *                     renewed within 30 days of expiry — only if we generated it
 *
 * Platform files are installed as copies in <run dir>/tls/ owned by postgres, and only as a
 * pair whose key matches its certificate: postgres and PgBouncer never see a half-rotated
 * pair, and never depend on how the platform's agent set file modes. The self-signed pair
 * carries a sentinel (the file's SHA-256 and expiry), so a file we did not write is never
 * replaced and a warm boot needs no openssl call.
 */
import { ensureDir, exists, writeAtomic } from "../boot/files.ts";
import type { RunAs } from "../boot/users.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { sha256Hex } from "../util/crypto.ts";
import { log } from "../util/log.ts";
import {
  breaksChannelBinding,
  type CertInfo,
  certInfo,
  generateSelfSigned,
  keyMatchesCert,
} from "./openssl.ts";

function warnIfNoDigest(path: string, info: CertInfo): void {
  if (breaksChannelBinding(info.signatureAlgorithm)) {
    log.warn(
      `TLS certificate ${path} is signed with ${info.signatureAlgorithm}: clients using SCRAM channel binding (libpq's default over TLS) cannot connect to the direct port; use an ECDSA or RSA certificate`,
    );
  }
}

export type TlsSource = "user-managed" | "platform" | "self-signed" | "existing";

export interface TlsMaterial {
  source: TlsSource;
  certFile: string;
  keyFile: string;
  caFile: string | undefined;
  /** Files whose change means "rotate". */
  watch: string[];
  fingerprint: string;
  notAfter: string;
}

export interface TlsOptions {
  stateDir: string;
  platformDir: string;
  runDir: string;
  hostname: string;
  extraNames: string[];
  runAs: RunAs;
  now?: Date;
}

const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
const SENTINEL = ".generated.json";

async function sha256File(path: string): Promise<string> {
  return sha256Hex(await Deno.readFile(path));
}

/** Make a key usable by postgres (owned by it, 0600) without touching its content. */
function secureKey(path: string, owner: RunAs["switchTo"]): void {
  const info = Deno.statSync(path);
  if (((info.mode ?? 0) & 0o077) !== 0) Deno.chmodSync(path, 0o600);
  if (owner && info.uid !== owner.uid) Deno.chownSync(path, owner.uid, owner.gid);
}

async function userManaged(o: TlsOptions): Promise<TlsMaterial> {
  const cert = `${o.stateDir}/server.crt`;
  const key = `${o.stateDir}/server.key`;
  if (!exists(cert) || !exists(key)) {
    throw new OperatorError(
      `Cannot start: ${o.stateDir}/.user-managed is present but server.crt or server.key is missing; add both or remove the sentinel`,
      { exitCode: 2 },
    );
  }
  if (!(await keyMatchesCert(key, cert))) {
    throw new OperatorError(
      `Cannot start: ${key} does not belong to ${cert} (user-managed TLS); install a matching pair`,
      { exitCode: 2 },
    );
  }
  secureKey(key, o.runAs.switchTo);
  const info = await certInfo(cert);
  warnIfNoDigest(cert, info);
  return {
    source: "user-managed",
    certFile: cert,
    keyFile: key,
    caFile: exists(`${o.stateDir}/ca.crt`) ? `${o.stateDir}/ca.crt` : undefined,
    watch: [cert, key],
    fingerprint: info.fingerprint,
    notAfter: info.notAfter.toISOString(),
  };
}

/** Validate the platform's pair and install it; throws (keeping what is installed) if unusable. */
async function platform(o: TlsOptions): Promise<TlsMaterial> {
  const cert = `${o.platformDir}/cert.pem`;
  const key = `${o.platformDir}/key.pem`;
  const ca = `${o.platformDir}/ca.pem`;
  if (!exists(key)) throw new OperatorError(`${cert} has no ${key} beside it`);
  if (!(await keyMatchesCert(key, cert))) {
    throw new OperatorError(`${key} does not belong to ${cert} (a rotation half done?)`);
  }
  const info = await certInfo(cert);
  warnIfNoDigest(cert, info);
  const dir = `${o.runDir}/tls`;
  ensureDir(dir, 0o700, o.runAs.switchTo);
  const owner = o.runAs.switchTo;
  // Key first, then certificate: both are complete before anyone is told to reload.
  writeAtomic(`${dir}/server.key`, await Deno.readFile(key), { mode: 0o600, owner });
  writeAtomic(`${dir}/server.crt`, await Deno.readFile(cert), { mode: 0o644, owner });
  const hasCa = exists(ca);
  if (hasCa) writeAtomic(`${dir}/ca.crt`, await Deno.readFile(ca), { mode: 0o644, owner });
  return {
    source: "platform",
    certFile: `${dir}/server.crt`,
    keyFile: `${dir}/server.key`,
    caFile: hasCa ? `${dir}/ca.crt` : undefined,
    watch: [cert, key, ca],
    fingerprint: info.fingerprint,
    notAfter: info.notAfter.toISOString(),
  };
}

async function selfSigned(o: TlsOptions): Promise<TlsMaterial> {
  const cert = `${o.stateDir}/server.crt`;
  const key = `${o.stateDir}/server.key`;
  const sentinelPath = `${o.stateDir}/${SENTINEL}`;
  const now = o.now ?? new Date();
  const material = (fingerprint: string, notAfter: string, source: TlsSource): TlsMaterial => ({
    source,
    certFile: cert,
    keyFile: key,
    caFile: undefined,
    watch: [cert, key],
    fingerprint,
    notAfter,
  });
  if (exists(cert) && exists(key)) {
    let sentinel: { sha256?: string; fingerprint?: string; notAfter?: string } = {};
    try {
      sentinel = JSON.parse(Deno.readTextFileSync(sentinelPath));
    } catch { /* none: not ours */ }
    const ours = sentinel.sha256 !== undefined && sentinel.sha256 === await sha256File(cert);
    if (!ours) {
      // Files we did not write (put there by hand): used as they are, never replaced.
      const info = await certInfo(cert);
      if (info.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) {
        log.warn(
          `TLS certificate ${cert} expires ${info.notAfter.toISOString()} and is not ours to renew; replace it`,
        );
      }
      secureKey(key, o.runAs.switchTo);
      return material(info.fingerprint, info.notAfter.toISOString(), "existing");
    }
    const notAfter = new Date(sentinel.notAfter ?? 0);
    if (notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS) {
      return material(sentinel.fingerprint ?? "", notAfter.toISOString(), "self-signed");
    }
    log.info(`TLS: self-signed certificate expires ${notAfter.toISOString()}; renewing it`);
  }
  ensureDir(o.stateDir, 0o700, o.runAs.switchTo);
  const tmpKey = `${key}.new`;
  const tmpCert = `${cert}.new`;
  const names = [...new Set([o.hostname, "localhost", ...o.extraNames].filter(Boolean))];
  await generateSelfSigned({
    keyPath: tmpKey,
    certPath: tmpCert,
    commonName: o.hostname || "localhost",
    dnsNames: names,
    ipAddresses: ["127.0.0.1", "::1"],
    days: 365,
  });
  const owner = o.runAs.switchTo;
  Deno.chmodSync(tmpKey, 0o600);
  Deno.chmodSync(tmpCert, 0o644);
  if (owner) {
    Deno.chownSync(tmpKey, owner.uid, owner.gid);
    Deno.chownSync(tmpCert, owner.uid, owner.gid);
  }
  const info = await certInfo(tmpCert);
  Deno.renameSync(tmpKey, key);
  Deno.renameSync(tmpCert, cert);
  writeAtomic(
    sentinelPath,
    JSON.stringify({
      generatedBy: "beyond-pg",
      sha256: await sha256File(cert),
      fingerprint: info.fingerprint,
      notAfter: info.notAfter.toISOString(),
    }) + "\n",
    { mode: 0o600, owner },
  );
  log.info(
    `TLS: generated a self-signed ECDSA P-256 certificate for ${
      names.join(", ")
    } (until ${info.notAfter.toISOString()})`,
  );
  return material(info.fingerprint, info.notAfter.toISOString(), "self-signed");
}

/**
 * The material to use now. `previous` is what is in use (rotation): when the platform's new
 * pair is unusable, the previous one stays and the problem is returned instead.
 */
export async function resolveTls(
  o: TlsOptions,
  previous?: TlsMaterial,
): Promise<{ material: TlsMaterial | undefined; problem?: string }> {
  if (exists(`${o.stateDir}/.user-managed`)) return { material: await userManaged(o) };
  if (exists(`${o.platformDir}/cert.pem`)) {
    try {
      return { material: await platform(o) };
    } catch (error) {
      const problem = `platform TLS in ${o.platformDir} not used: ${errorMessage(error)}`;
      if (previous) {
        return { material: previous, problem: `${problem}; keeping the certificate in use` };
      }
      log.warn(`${problem}; falling back to a self-signed certificate`);
    }
  }
  try {
    return { material: await selfSigned(o) };
  } catch (error) {
    const problem = `TLS disabled: ${
      errorMessage(error)
    }; install openssl or provide a certificate`;
    log.warn(problem);
    return { material: previous, problem };
  }
}

/** A cheap signature of the watched files (inode, size, mtime). */
export function filesSignature(paths: readonly string[]): string {
  return paths.map((p) => {
    try {
      const i = Deno.statSync(p);
      return `${i.ino}:${i.size}:${i.mtime?.getTime()}`;
    } catch {
      return "-";
    }
  }).join("|");
}
