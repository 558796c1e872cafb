/** PURE: where everything lives, from settings. */
import type { Settings } from "../settings/settings.ts";

export interface Layout {
  dataRoot: string;
  /** PGDATA = <root>/main */
  pgdata: string;
  /** pg_wal points here: <root>/wal */
  walDir: string;
  confDir: string;
  /** beyond-pg's own state inside PGDATA (forks with the database): TLS, markers. */
  stateDir: string;
  runDir: string;
  socketDir: string;
  pgbouncerDir: string;
  hooksDir: string;
  /** Held (flock) by the running supervisor. */
  lockFile: string;
}

export function layoutFor(
  settings: Pick<Settings, "dataRoot" | "runDir" | "socketDir" | "hooksDir">,
): Layout {
  const pgdata = `${settings.dataRoot}/main`;
  return {
    dataRoot: settings.dataRoot,
    pgdata,
    walDir: `${settings.dataRoot}/wal`,
    confDir: `${pgdata}/conf.d`,
    stateDir: `${pgdata}/beyond`,
    runDir: settings.runDir,
    socketDir: settings.socketDir,
    pgbouncerDir: `${settings.runDir}/pgbouncer`,
    hooksDir: settings.hooksDir,
    lockFile: `${settings.dataRoot}/.beyond-pg.lock`,
  };
}
