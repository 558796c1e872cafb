/**
 * What the commands postgres runs (archive, restore-wal) need to reach the archive: written by
 * the supervisor into <run dir>/archive/config.json (0600, owned by the postgres user: it holds
 * the S3 secret, which therefore never sits in postgres's environment). No file: no target.
 */
import type { Codec } from "./codec.ts";

export interface ArchiveConfig {
  target: string;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  caCerts: string[];
  codec: Codec;
  parallel: number;
  major: number;
  /** The cluster's system identifier (from pg_control), decimal. */
  sysid: string;
  pgdata: string;
  walDir: string;
  /** Socket of the supervisor's archive service (for hand-off), when it runs. */
  socket: string;
  /** For base backups: postgres's tools, its socket and port, and who runs them. */
  binDir: string;
  pgVersion: string;
  socketDir: string;
  port: number;
  runAs?: { uid: number; gid: number };
}

export function configPath(runDir: string): string {
  return `${runDir}/archive/config.json`;
}

/** The config, or undefined when there is no archive target (the cheap, common path). */
export function readArchiveConfig(runDir: string): ArchiveConfig | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(configPath(runDir));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return JSON.parse(text) as ArchiveConfig;
}

/** The system identifier of the cluster in `pgdata` (the first 8 bytes of pg_control). */
export function clusterSystemIdentifier(pgdata: string): string {
  const control = Deno.readFileSync(`${pgdata}/global/pg_control`);
  return new DataView(control.buffer, control.byteOffset).getBigUint64(0, true).toString();
}
