/**
 * `beyond-pg backup [--label L] [--incremental] [--json]`: a base backup of the running cluster,
 * streamed to the archive target (see backup/basebackup.ts); `--incremental` (PostgreSQL 17+)
 * stores only what changed since the newest backup. Progress on a TTY; the manifest at the end
 * (JSON with --json). Exit 0 once the manifest is stored.
 */
import { describeBackup, runBackup } from "../backup/basebackup.ts";
import { errorMessage } from "../util/errors.ts";
import { privateConfigPath, readArchiveConfig } from "../wal/config.ts";
import { runDirFrom } from "../settings/defaults.ts";
import { parseArgs } from "./args.ts";

export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args, { values: ["label"], flags: ["json", "incremental"] });
  if (typeof parsed === "string") {
    console.error(
      `beyond-pg backup: ${parsed}; usage: backup [--label L] [--incremental] [--json]`,
    );
    return 2;
  }
  const runDir = runDirFrom();
  let cfg;
  try {
    cfg = readArchiveConfig(runDir);
  } catch (error) {
    console.error(
      `beyond-pg backup: cannot read ${privateConfigPath(runDir)} (${
        errorMessage(error)
      }); run backup as root, or through \`beyond-pg control backup\``,
    );
    return 2;
  }
  if (!cfg) {
    console.error(
      `beyond-pg backup: no archive target (${
        privateConfigPath(runDir)
      } is missing); set BEYOND_PG_ARCHIVE_TARGET and start the supervisor`,
    );
    return 2;
  }
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  try {
    const m = await runBackup(cfg, {
      ...(parsed.values.has("label") ? { label: parsed.values.get("label")! } : {}),
      incremental: parsed.flags.has("incremental"),
      ...(tty
        ? { progress: (line: string) => Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`)) }
        : {}),
    });
    if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
    if (parsed.flags.has("json")) console.log(JSON.stringify(m));
    else {
      console.log(`backup stored: ${describeBackup(m)}`);
      console.log(
        `  ${((m.bytes / 2 ** 20) / (m.duration_ms / 1000)).toFixed(1)} MiB/s, sha256 ${m.sha256}`,
      );
    }
    return 0;
  } catch (error) {
    if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
    console.error(`beyond-pg backup: ${errorMessage(error)}`);
    return (error as { exitCode?: number }).exitCode ?? 1;
  }
}
