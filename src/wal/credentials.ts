/**
 * EFFECT: the S3 credentials of an archive config, as the S3 client's source (s3/credentials.ts):
 * the key pair as given, or a file the platform rewrites, or an HTTP endpoint. The file must be
 * root's to trust (its directory chain root's, the file root's or ours, not a link, not writable
 * by group or others): postgres could otherwise point the archive at keys of its choosing.
 */
import {
  CredentialsError,
  type CredentialSource,
  fixedCredentials,
  parseCredentialDocument,
  RefreshingSource,
  urlLoader,
} from "../s3/credentials.ts";
import { HttpTransport } from "../s3/http.ts";
import { RootTree } from "../fs/tree.ts";
import { log } from "../util/log.ts";
import type { ArchiveConfig } from "./config.ts";

/** The file's identity: a change of any of these is a rewrite (or a rename over it). */
function identity(path: string): string {
  try {
    const s = Deno.statSync(path);
    return `${s.ino}:${s.size}:${s.mtime?.getTime()}`;
  } catch {
    return "";
  }
}

/** Read the credentials file if root may trust it; a one-line CredentialsError otherwise. */
export function readCredentialsFile(path: string): string {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  try {
    RootTree.check(dir, "BEYOND_PG_S3_CREDENTIALS_FILE");
  } catch (error) {
    throw new CredentialsError(error instanceof Error ? error.message : String(error));
  }
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch (error) {
    throw new CredentialsError(
      `BEYOND_PG_S3_CREDENTIALS_FILE=${path} cannot be read (${
        error instanceof Error ? error.message : error
      }); the platform must write it`,
      { cause: error },
    );
  }
  const me = Deno.uid();
  if (info.isSymlink || !info.isFile) {
    throw new CredentialsError(
      `BEYOND_PG_S3_CREDENTIALS_FILE=${path} is not a regular file; write the credentials into the file itself`,
    );
  }
  if ((info.uid !== 0 && info.uid !== me) || ((info.mode ?? 0) & 0o022) !== 0) {
    throw new CredentialsError(
      `BEYOND_PG_S3_CREDENTIALS_FILE=${path} is not safe for root to use (owner uid ${info.uid}, mode ${
        ((info.mode ?? 0) & 0o777).toString(8)
      }); make it root's and not writable by group or others (chown root; chmod go-w)`,
    );
  }
  return Deno.readTextFileSync(path);
}

export function credentialSourceFor(cfg: ArchiveConfig): CredentialSource {
  const warn = (line: string) => log.warn(`s3: ${line}`);
  if (cfg.credentialsFile) {
    const path = cfg.credentialsFile;
    let seen = "";
    return new RefreshingSource(() => {
      try {
        seen = identity(path);
        return Promise.resolve(
          parseCredentialDocument(
            readCredentialsFile(path),
            `BEYOND_PG_S3_CREDENTIALS_FILE=${path}`,
          ),
        );
      } catch (error) {
        return Promise.reject(error);
      }
    }, { changed: () => identity(path) !== seen, warn });
  }
  if (cfg.credentialsUrl) {
    return new RefreshingSource(
      urlLoader(
        cfg.credentialsUrl,
        cfg.credentialsToken,
        new HttpTransport({ connectMs: 5000, idleMs: 5000, maxIdle: 0 }),
      ),
      { warn },
    );
  }
  return fixedCredentials({
    accessKeyId: cfg.accessKeyId,
    secretAccessKey: cfg.secretAccessKey,
    ...(cfg.sessionToken ? { sessionToken: cfg.sessionToken } : {}),
  });
}
