/**
 * EFFECT: which certificate and key postgres and PgBouncer use, in the design's order:
 *
 *   1. user-managed   PGDATA/beyond/.user-managed → PGDATA/beyond/server.{crt,key}, as is
 *   2. platform       <BEYOND_PG_TLS_DIR>/{cert,key,ca}.pem (default /run/beyond/tls)
 *   3. self-signed    PGDATA/beyond/server.{crt,key}: ECDSA P-256 (see openssl.ts for why
 *                     not Ed25519), CN = hostname, one year,
 *                     renewed within 30 days of expiry — only if we generated it
 *
 * Platform files are installed as copies in <run dir>/tls/ (root's directory; the key
 * root:postgres 0640, which postgres accepts), and only as a pair whose key matches its
 * certificate: postgres and PgBouncer never see a half-rotated pair, and never depend on how
 * the platform's agent set file modes. The platform directory must be root's: its key is
 * copied where postgres reads it. The self-signed pair carries a sentinel (the file's SHA-256
 * and expiry), so a file we did not write is never replaced and a warm boot needs no openssl.
 *
 * PGDATA/beyond is postgres's: everything there is read and written as postgres (PgTree, and
 * openssl run as postgres), so a planted link there reaches nothing postgres could not.
 */
import type { Owner } from "../fs/identity.ts";
import { type PgTree, RootTree } from "../fs/tree.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { exists } from "../util/fs.ts";
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
  /** The tree PGDATA is in (postgres's) and our run dir's (root's). */
  data: PgTree;
  run: RootTree;
  stateDir: string;
  platformDir: string;
  runDir: string;
  hostname: string;
  extraNames: string[];
  /** The postgres user when we are root. */
  owner: Owner | undefined;
  now?: Date;
  /**
   * A fork's first boot: a self-signed certificate of ours whose names differ from this
   * machine's is replaced (otherwise the parent's identity is kept, as the design says).
   */
  renewOnNewNames?: boolean;
}

/** The self-signed certificate's names differ (as sets). */
export function namesDiffer(before: readonly string[], now: readonly string[]): boolean {
  const a = new Set(before);
  const b = new Set(now);
  return a.size !== b.size || [...a].some((n) => !b.has(n));
}

const RENEW_BEFORE_MS = 30 * 24 * 3600 * 1000;
const SENTINEL = ".generated.json";

function sha256File(tree: PgTree, path: string): Promise<string> {
  return sha256Hex(tree.readBytes(path) ?? new Uint8Array());
}

/**
 * A key in PGDATA/beyond must be postgres's and private (postgres refuses it otherwise): the
 * mode is fixed (as postgres), the owner is only checked — root chowns nothing there.
 */
function secureKey(o: TlsOptions, path: string): void {
  const info = o.data.stat(path);
  const uid = o.owner?.uid ?? Deno.uid();
  if (!info?.isFile || info.uid !== uid) {
    throw new OperatorError(
      `Cannot start: ${path} must be a file owned by the postgres user (uid ${uid}); chown it (and its certificate) to postgres`,
      { exitCode: 2 },
    );
  }
  if (((info.mode ?? 0) & 0o077) !== 0) o.data.chmod(path, 0o600);
}

async function userManaged(o: TlsOptions): Promise<TlsMaterial> {
  const cert = `${o.stateDir}/server.crt`;
  const key = `${o.stateDir}/server.key`;
  if (!o.data.exists(cert) || !o.data.exists(key)) {
    throw new OperatorError(
      `Cannot start: ${o.stateDir}/.user-managed is present but server.crt or server.key is missing; add both or remove the sentinel`,
      { exitCode: 2 },
    );
  }
  if (!(await keyMatchesCert(key, cert, { as: o.owner }))) {
    throw new OperatorError(
      `Cannot start: ${key} does not belong to ${cert} (user-managed TLS); install a matching pair`,
      { exitCode: 2 },
    );
  }
  secureKey(o, key);
  const info = await certInfo(cert, { as: o.owner });
  warnIfNoDigest(cert, info);
  return {
    source: "user-managed",
    certFile: cert,
    keyFile: key,
    caFile: o.data.exists(`${o.stateDir}/ca.crt`) ? `${o.stateDir}/ca.crt` : undefined,
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
  // Its key is copied where postgres reads it: a directory postgres could plant a link in
  // would hand postgres any file root can read.
  const source = RootTree.check(o.platformDir, "BEYOND_PG_TLS_DIR");
  if (!source.exists(key)) throw new OperatorError(`${cert} has no ${key} beside it`);
  if (!(await keyMatchesCert(key, cert))) {
    throw new OperatorError(`${key} does not belong to ${cert} (a rotation half done?)`);
  }
  const info = await certInfo(cert);
  warnIfNoDigest(cert, info);
  const dir = `${o.runDir}/tls`;
  o.run.ensureDir(dir, 0o755);
  // postgres accepts a key owned by root with group read (0640); as ourselves, only 0600.
  const keyOwner = o.owner ? { uid: 0, gid: o.owner.gid } : undefined;
  const keyMode = o.owner ? 0o640 : 0o600;
  // Key first, then certificate: both are complete before anyone is told to reload.
  o.run.writeAtomic(`${dir}/server.key.new`, source.readBytes(key)!, 0o600);
  o.run.give(`${dir}/server.key.new`, keyOwner, keyMode);
  o.run.rename(`${dir}/server.key.new`, `${dir}/server.key`);
  o.run.writeAtomic(`${dir}/server.crt`, source.readBytes(cert)!, 0o644);
  const hasCa = source.exists(ca);
  if (hasCa) o.run.writeAtomic(`${dir}/ca.crt`, source.readBytes(ca)!, 0o644);
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
  const data = o.data;
  const names = [...new Set([o.hostname, "localhost", ...o.extraNames].filter(Boolean))];
  if (data.exists(cert) && data.exists(key)) {
    let sentinel: { sha256?: string; fingerprint?: string; notAfter?: string; names?: string[] } =
      {};
    try {
      sentinel = JSON.parse(data.readText(sentinelPath) ?? "{}");
    } catch { /* none: not ours */ }
    const ours = sentinel.sha256 !== undefined && sentinel.sha256 === await sha256File(data, cert);
    if (!ours) {
      // Files we did not write (put there by hand): used as they are, never replaced.
      const info = await certInfo(cert, { as: o.owner });
      if (info.notAfter.getTime() - now.getTime() < RENEW_BEFORE_MS) {
        log.warn(
          `TLS certificate ${cert} expires ${info.notAfter.toISOString()} and is not ours to renew; replace it`,
        );
      }
      secureKey(o, key);
      return material(info.fingerprint, info.notAfter.toISOString(), "existing");
    }
    const notAfter = new Date(sentinel.notAfter ?? 0);
    const renamed = o.renewOnNewNames === true && sentinel.names !== undefined &&
      namesDiffer(sentinel.names, names);
    if (!renamed && notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS) {
      return material(sentinel.fingerprint ?? "", notAfter.toISOString(), "self-signed");
    }
    log.info(
      renamed
        ? `TLS: fork: the parent's self-signed certificate names ${
          sentinel.names!.join(", ")
        }, this machine is ${names.join(", ")}; generating a new one`
        : `TLS: self-signed certificate expires ${notAfter.toISOString()}; renewing it`,
    );
  }
  data.ensureDir(o.stateDir, 0o700);
  const tmpKey = `${key}.new`;
  const tmpCert = `${cert}.new`;
  data.remove(tmpKey, false);
  data.remove(tmpCert, false);
  await generateSelfSigned({
    as: o.owner,
    keyPath: tmpKey,
    certPath: tmpCert,
    commonName: o.hostname || "localhost",
    dnsNames: names,
    ipAddresses: ["127.0.0.1", "::1"],
    days: 365,
  });
  data.chmod(tmpKey, 0o600);
  data.chmod(tmpCert, 0o644);
  const info = await certInfo(tmpCert, { as: o.owner });
  data.rename(tmpKey, key);
  data.rename(tmpCert, cert);
  data.writeAtomic(
    sentinelPath,
    JSON.stringify({
      generatedBy: "beyond-pg",
      sha256: await sha256File(data, cert),
      fingerprint: info.fingerprint,
      notAfter: info.notAfter.toISOString(),
      names,
    }) + "\n",
    0o600,
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
  if (o.data.exists(`${o.stateDir}/.user-managed`)) return { material: await userManaged(o) };
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
    const problem = previous
      ? `TLS: ${errorMessage(error)}; keeping the certificate in use`
      : `TLS disabled: ${errorMessage(error)}`;
    if (!previous) log.warn(problem); // a rotation reports its own problems
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
