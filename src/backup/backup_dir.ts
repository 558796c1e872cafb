/**
 * The backup's root-owned corner of the run dir (`<run>/backup/`, 0755): one backup at a time,
 * and the files a backup hands to pg_basebackup there.
 *
 * - **One at a time.** `backup.lock` is held (flock, exclusive) for the whole backup, by the CLI
 *   and by the RPC's child alike; a second backup is refused at once with one line naming the
 *   one running. Two at once would double the load on a small VM, could take the same
 *   default label (it has one-second resolution) and so overwrite each other's object, and
 *   would make chains harder to follow; pgBackRest refuses them too. The kernel drops the lock
 *   when the holder dies, even by kill -9.
 * - **Per backup names.** An incremental's base manifest is `incremental-base.<label>.manifest`,
 *   removed when the backup ends (stored or failed); whatever a killed backup left is removed by
 *   the next backup, under the lock (so it cannot be a running backup's).
 */
import { RootTree } from "../fs/tree.ts";
import { OperatorError } from "../util/errors.ts";

/** PURE: the base manifest file of the backup labelled `label` (a valid label: manifest.ts). */
export function baseFileName(label: string): string {
  return `incremental-base.${label}.manifest`;
}

/**
 * PURE: the entries of the backup dir that a finished or killed backup left behind (only
 * asked while holding the lock, so none belongs to a running backup): base manifests, the
 * temporary file of one whose write was cut off, and the fixed name earlier versions used.
 */
export function leftovers(names: string[]): string[] {
  return names.filter((n) => /^incremental-base(\..+)?\.manifest(\.tmp-[0-9a-f]{8})?$/.test(n));
}

/** PURE: the line for a backup refused because another holds the lock. */
export function busyLine(holder: string): string {
  let who = "another backup";
  try {
    const h = JSON.parse(holder) as { label?: string; pid?: number; started?: string };
    if (h.label) who = `backup ${h.label} (pid ${h.pid}, started ${h.started})`;
  } catch { /* written by nobody yet: the holder has only just locked it */ }
  return `${who} is running; one backup at a time: wait for it to finish, then run this one again`;
}

export interface BackupDir {
  dir: RootTree;
  /** Releases the lock (closing the file). */
  release(): void;
}

/**
 * Take the backup lock in `<runDir>/backup`, recording `label` as the holder, and remove what
 * earlier backups left. Throws an OperatorError (one line) when another backup holds it.
 */
export async function lockBackupDir(runDir: string, label: string): Promise<BackupDir> {
  const dir = backupDir(runDir);
  const held = await holdLock(dir, "backup.lock", { label }, busyLine);
  for (const name of leftovers(dir.list(dir.base).map((e) => e.name))) {
    dir.remove(`${dir.base}/${name}`, false);
  }
  return { dir, release: held };
}

/** `<runDir>/backup`, root's (created 0755 when missing). */
export function backupDir(runDir: string): RootTree {
  const dir = RootTree.check(`${runDir}/backup`, "BEYOND_PG_RUN_DIR");
  dir.create(0o755);
  return dir;
}

/**
 * An exclusive flock on `<dir>/<name>`, with `holder` (and our pid, and the time) written in it
 * for whoever is refused; `busy` makes that one line from what the holder wrote. Returns the
 * release. The file stays (an empty lock file is the unlocked state).
 */
export async function holdLock(
  dir: RootTree,
  name: string,
  holder: Record<string, string>,
  busy: (holder: string) => string,
  waitMs = 300,
): Promise<() => void> {
  const path = `${dir.base}/${name}`;
  const file = dir.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"busy">((r) => (timer = setTimeout(() => r("busy"), waitMs)));
  // No try-lock in Deno: a lock still waiting when we give up ends with the process (a CLI).
  const got = await Promise.race([file.lock(true).then(() => "locked" as const), timedOut]);
  clearTimeout(timer);
  if (got === "busy") {
    file.close();
    throw new OperatorError(busy(dir.readText(path) ?? ""), { exitCode: 2 });
  }
  const text = JSON.stringify({ ...holder, pid: Deno.pid, started: new Date().toISOString() });
  file.truncateSync(0);
  file.writeSync(new TextEncoder().encode(text + "\n"));
  return () => {
    try {
      file.truncateSync(0);
    } finally {
      file.close();
    }
  };
}
