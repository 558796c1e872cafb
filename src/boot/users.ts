/** OS accounts: who we are and who postgres runs as. */
import { OperatorError } from "../util/errors.ts";

export interface OsUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** PURE: one user from /etc/passwd text. */
export function parsePasswd(text: string, name: string): OsUser | undefined {
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) {
      return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/" };
    }
  }
  return undefined;
}

export function userById(text: string, uid: number): string | undefined {
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length >= 7 && Number(f[2]) === uid) return f[0];
  }
  return undefined;
}

/**
 * Who runs postgres: the configured OS user when we are root (postgres refuses root),
 * otherwise ourselves. `switchTo` is set when children must change uid/gid.
 */
export interface RunAs {
  user: OsUser;
  /** uid/gid for Deno.Command, or undefined when we already are that user. */
  switchTo: { uid: number; gid: number } | undefined;
  /** OS user name of this process (for the peer ident map). */
  self: string;
}

export function resolveRunAs(osUserName: string): RunAs {
  const uid = Deno.uid() ?? 0;
  let passwd = "";
  try {
    passwd = Deno.readTextFileSync("/etc/passwd");
  } catch { /* containers without /etc/passwd: handled below */ }
  const self = userById(passwd, uid) ?? Deno.env.get("USER") ?? String(uid);
  if (uid !== 0) {
    return {
      user: { name: self, uid, gid: Deno.gid() ?? uid, home: Deno.env.get("HOME") ?? "/" },
      switchTo: undefined,
      self,
    };
  }
  const user = parsePasswd(passwd, osUserName);
  if (!user) {
    throw new OperatorError(
      `Cannot start: running as root but OS user ${
        JSON.stringify(osUserName)
      } does not exist; create it (useradd --system ${osUserName}) or set BEYOND_PG_OS_USER`,
      { exitCode: 2 },
    );
  }
  if (user.uid === 0) {
    throw new OperatorError(
      `Cannot start: BEYOND_PG_OS_USER=${osUserName} is root and postgres refuses to run as root; use an unprivileged user`,
      { exitCode: 2 },
    );
  }
  return { user, switchTo: { uid: user.uid, gid: user.gid }, self };
}
