/**
 * `beyond-pg archive %p %f` — postgres's archive_command, run for every WAL file. Without an
 * archive target it returns 0 at once (the common case: one failed file open). With one, it
 * asks the supervisor, which holds the S3 credentials and uploads ahead of postgres, in
 * parallel; postgres's uid never sees a key. When no supervisor answers, root (a hand-run
 * command) uploads by itself from the private config; postgres's uid cannot read that, so it
 * exits 1 and postgres keeps the file. Exit 0 only once the file is stored; never by a signal.
 */
import { readArchiveConfig, readArchiveState } from "../wal/config.ts";
import { errorMessage } from "../util/errors.ts";
import { runDirFrom } from "../settings/defaults.ts";

export async function main(args: string[]): Promise<number> {
  const runDir = runDirFrom();
  let state;
  try {
    state = readArchiveState(runDir);
  } catch (error) {
    console.error(
      `beyond-pg archive: cannot read the archive state in ${runDir}: ${errorMessage(error)}`,
    );
    return 1;
  }
  if (!state) return 0;
  const [path, name] = args;
  if (!path || !name) {
    console.error("beyond-pg archive: usage: archive %p %f");
    return 1;
  }
  if (state.mode === "missing") {
    // Never recycle WAL of a volume that is being archived just because the target is unset.
    console.error(
      `beyond-pg archive: ${name}: this volume is archived to ${state.target} but no BEYOND_PG_ARCHIVE_TARGET is set; the file stays in pg_wal (set the target again, or BEYOND_PG_ARCHIVE_TARGET=off to stop archiving on purpose)`,
    );
    return 1;
  }
  try {
    const { handOff } = await import("../wal/handoff.ts");
    const res = await handOff(state.socket, "archive", name, 30 * 60_000);
    if (res?.ok) return 0;
    if (res && !res.ok && res.error.code !== "unavailable") {
      console.error(`beyond-pg archive: ${name}: ${res.error.message}`);
      return 1;
    }
    let cfg;
    try {
      cfg = readArchiveConfig(runDir);
    } catch { /* not root: only the supervisor may upload */ }
    if (!cfg) {
      console.error(
        `beyond-pg archive: ${name}: the supervisor does not answer on ${state.socket}; the file stays in pg_wal until it does (is beyond-pg supervisor running?)`,
      );
      return 1;
    }
    // By hand, as root: upload from here.
    const { archivePrepared, checkOwner, clientFor, WAL_ATTEMPTS } = await import(
      "../wal/archive.ts"
    );
    const { prepareInline, readWalFile } = await import("../wal/prepare.ts");
    const client = clientFor(cfg, { attempts: WAL_ATTEMPTS });
    const owner = await checkOwner(client, cfg);
    const read = () => readWalFile(path, name, { major: cfg.major, sysid: cfg.sysid }, undefined);
    const { sealPrepared } = await import("../wal/keys.ts");
    const prepared = await sealPrepared(
      cfg,
      await prepareInline(path, name, await read(), cfg.codec),
    );
    const r = await archivePrepared(client, cfg, prepared, read, owner);
    if (!r.stored) console.error(`beyond-pg archive: ${name} was already archived (same content)`);
    return 0;
  } catch (error) {
    console.error(`beyond-pg archive: ${name}: ${errorMessage(error)}`);
    return 1;
  }
}
