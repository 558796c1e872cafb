/**
 * What the archive needs, and who may see it.
 *
 *   <run dir>/private/archive.json   ArchiveConfig, with the S3 secret: root only (0600 in a
 *                                    0700 root directory). The supervisor and root's CLI
 *                                    commands (backup, backups, a hand-run archive) read it.
 *   <run dir>/archive/state.json     ArchiveState, no secret (0644): what the commands postgres
 *                                    runs (archive, restore-wal) need — whether there is a
 *                                    target, and the socket of the supervisor that has it.
 *
 * postgres reaches S3 only through that socket: a superuser's `pg_read_file` finds no key.
 */
import type { Codec } from "./codec.ts";
import type { Sse } from "../s3/sse.ts";
import { selfCommand, shellQuote } from "../process/self.ts";

export interface ArchiveConfig {
  target: string;
  endpoint: string;
  region: string;
  /** The key pair ("" when a file or an endpoint gives the credentials). */
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Credentials re-read from this root-owned file (wal/credentials.ts). */
  credentialsFile?: string;
  /** …or from this endpoint, with this Authorization header. */
  credentialsUrl?: string;
  credentialsToken?: string;
  /** Attempts per S3 request (default the client's, 8). */
  attempts?: number;
  urlStyle?: "auto" | "path" | "virtual";
  sse?: Sse;
  storageClass?: string;
  /** Client-side encryption keys, base64 (envelope.ts): the first encrypts, all decrypt. */
  encryptionKeys?: string[];
  caCerts: string[];
  codec: Codec;
  parallel: number;
  /** No byte moved for this long fails an S3 request (default the client's, 30 s). */
  idleMs?: number;
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

/** What the commands postgres runs may know. */
export type ArchiveState =
  /** Archive through `socket`. */
  | { mode: "on"; socket: string; target: string }
  /** The volume was archived to `target`, which is not configured now: refuse (keep WAL). */
  | { mode: "missing"; target: string };

export function privateDir(runDir: string): string {
  return `${runDir}/private`;
}

export function privateConfigPath(runDir: string): string {
  return `${privateDir(runDir)}/archive.json`;
}

export function archiveDir(runDir: string): string {
  return `${runDir}/archive`;
}

export function statePath(runDir: string): string {
  return `${archiveDir(runDir)}/state.json`;
}

/** Where the archive service marks files it has stored (see archiveCommandFor below, and wal/service.ts). */
export function archiveDoneDir(runDir: string): string {
  return `${archiveDir(runDir)}/done`;
}

function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  return JSON.parse(text) as T;
}

/**
 * The secret config, or undefined when there is no archive target. Throws PermissionDenied for
 * anyone but root: the commands postgres runs never get here.
 */
export function readArchiveConfig(runDir: string): ArchiveConfig | undefined {
  return readJson<ArchiveConfig>(privateConfigPath(runDir));
}

/** The public state, or undefined when there is no archive target (the cheap, common path). */
export function readArchiveState(runDir: string): ArchiveState | undefined {
  return readJson<ArchiveState>(statePath(runDir));
}

/**
 * The timeline of a pg_control file's bytes: its latest checkpoint's ThisTimeLineID (after
 * system_identifier, two versions, state, time, checkPoint and the checkpoint's redo).
 */
export function controlTimeline(control: Uint8Array): number {
  return new DataView(control.buffer, control.byteOffset).getUint32(48, true);
}

/** The system identifier of a pg_control file's bytes (its first 8 bytes). */
export function systemIdentifierOf(control: Uint8Array): string {
  return new DataView(control.buffer, control.byteOffset).getBigUint64(0, true).toString();
}

/**
 * postgres's archive_command. Without the archive state file (no target, none recorded) it
 * exits 0 at once. When the supervisor's archive service has already stored the
 * file, it left a marker in a directory only root can write: the shell finds it and exits 0
 * without starting a process of ours (postgres runs this once per segment, one at a time).
 * While the service is uploading the file (`<name>.up` beside the marker), the shell waits for
 * it in 50 ms steps, up to UPLOAD_WAIT_STEPS: a draining backlog then costs a `sleep` or two
 * per segment, not a process of ours (~100 ms of CPU each, taken from the uploads). Otherwise,
 * or when the upload failed, `archive` asks the supervisor, which reports why. postgres cannot
 * plant or remove a marker; the service drops each one once postgres is done with its file.
 */
export function archiveCommandFor(runDir: string): string {
  // No state file: no target and nothing ever archived, which `archive` would answer with 0
  // after starting; the shell answers at once (postgres runs this for every segment).
  const state = shellQuote(statePath(runDir));
  const marker = shellQuote(`${archiveDoneDir(runDir)}/`) + "%f";
  const wait = `i=0; while [ $i -lt ${UPLOAD_WAIT_STEPS} ] && [ -e ${marker}.up ] && ` +
    `[ ! -e ${marker} ]; do sleep 0.05; i=$((i+1)); done; test -e ${marker}`;
  return `[ -e ${state} ] || exit 0; test -e ${marker} || { ${wait}; } || ${
    selfCommand("archive", "%p", "%f")
  }`;
}

/** 50 ms steps archive_command waits for an upload in flight before asking itself (30 s). */
export const UPLOAD_WAIT_STEPS = 600;
