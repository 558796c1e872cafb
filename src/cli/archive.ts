/**
 * `beyond-pg archive %p %f` — postgres's archive_command, run for every WAL file. Without an
 * archive target it returns 0 at once (the common case: one failed file open). With one, the
 * supervisor (which uploads ahead of postgres, in parallel) is asked first; without a
 * supervisor the file is uploaded from here. Exit 0 only once the file is stored; any failure
 * exits 1 (postgres keeps the file and retries), never by a signal.
 */
import { readArchiveConfig } from "../wal/config.ts";
import { errorMessage } from "../util/errors.ts";

export async function main(args: string[]): Promise<number> {
  const runDir = Deno.env.get("BEYOND_PG_RUN_DIR") || "/run/beyond-pg";
  let cfg;
  try {
    cfg = readArchiveConfig(runDir);
  } catch (error) {
    console.error(
      `beyond-pg archive: cannot read ${runDir}/archive/config.json: ${errorMessage(error)}`,
    );
    return 1;
  }
  if (!cfg) return 0;
  const [path, name] = args;
  if (!path || !name) {
    console.error("beyond-pg archive: usage: archive %p %f");
    return 1;
  }
  try {
    const { handOff } = await import("../wal/handoff.ts");
    const res = await handOff(cfg.socket, "archive", name, 30 * 60_000);
    if (res?.ok) return 0;
    if (res && !res.ok && res.error.code !== "unavailable") {
      console.error(`beyond-pg archive: ${name}: ${res.error.message}`);
      return 1;
    }
    // Standalone.
    const { archivePrepared, checkOwner, clientFor } = await import("../wal/archive.ts");
    const { prepareInline } = await import("../wal/prepare.ts");
    const client = clientFor(cfg);
    const owner = await checkOwner(client, cfg);
    const r = await archivePrepared(client, cfg, await prepareInline(path, name, cfg.codec), owner);
    if (!r.stored) console.error(`beyond-pg archive: ${name} was already archived (same content)`);
    return 0;
  } catch (error) {
    console.error(`beyond-pg archive: ${name}: ${errorMessage(error)}`);
    return 1;
  }
}
