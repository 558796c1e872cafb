/**
 * `beyond-pg verify [--backup L] [--json] [--quick] [--restore-test]`: prove that each base
 * backup (or one) can be restored — its object against its manifest, the WAL from its start to
 * the newest archived segment (backup/verify.ts); with --restore-test, then restore the newest
 * (or L) into a temporary root, recover it to the end of the archived WAL and query every
 * database (backup/trial_restore.ts). Exit 0 when everything holds; 1 with the first problem
 * named (a missing segment, a corrupt backup, a restore that fails); 2 for bad arguments or no
 * archive. On success as root,
 * `<run dir>/archive/verified.json` records when (the supervisor's metric
 * beyond_pg_archive_verified_timestamp_seconds reads it).
 */
import { describeVerdict, verifyArchive } from "../backup/verify.ts";
import { describeRestoreTest, restoreTest } from "../backup/trial_restore.ts";
import { readArchiveConfig } from "../wal/config.ts";
import { errorMessage } from "../util/errors.ts";
import { parseArgs } from "./args.ts";
import { recordVerified } from "../backup/verified.ts";
import { runDirFrom } from "../settings/defaults.ts";

const USAGE = "usage: verify [--backup LABEL] [--json] [--quick] [--restore-test]";

export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args, { values: ["backup"], flags: ["json", "quick", "restore-test"] });
  if (typeof parsed === "string" || parsed.positional.length) {
    console.error(
      `beyond-pg verify: ${typeof parsed === "string" ? parsed : "unexpected argument"}; ${USAGE}`,
    );
    return 2;
  }
  let cfg;
  try {
    // A running supervisor's config first: the RPC's child runs without the project's config
    // (no npm packages), which building settings from scratch would need.
    cfg = readArchiveConfig(runDirFrom()) ??
      await (await import("../backup/resolve.ts")).resolveArchive();
  } catch (error) {
    console.error(`beyond-pg verify: ${errorMessage(error)}`);
    return 2;
  }
  const json = parsed.flags.has("json");
  try {
    const report = await verifyArchive(cfg, {
      ...(parsed.values.has("backup") ? { backup: parsed.values.get("backup")! } : {}),
      quick: parsed.flags.has("quick"),
    });
    const trial = parsed.flags.has("restore-test");
    if (trial && report.ok) {
      const t0 = performance.now();
      const tty = !json && Deno.stderr.isTerminal();
      const enc = new TextEncoder();
      report.restoreTest = await restoreTest(cfg, {
        ...(parsed.values.has("backup") ? { backup: parsed.values.get("backup")! } : {}),
        ...(tty
          ? { progress: (line: string) => Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`)) }
          : {}),
      });
      if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
      report.seconds += (performance.now() - t0) / 1000;
      if (!report.restoreTest.ok) {
        report.ok = false;
        report.problem ??= report.restoreTest.problem;
      }
    }
    if (report.ok) recordVerified(runDirFrom(), report);
    if (json) console.log(JSON.stringify(report));
    else {
      for (const v of report.backups) console.log(describeVerdict(v));
      if (report.restoreTest) console.log(describeRestoreTest(report.restoreTest));
      else if (trial) console.log("restore test not run: the checks above failed");
      console.log(
        `${
          report.ok ? "verified" : "NOT restorable"
        }: ${report.backups.length} backup(s), ${report.walFilesChecked} WAL file(s) read back, in ${
          report.seconds.toFixed(1)
        } s (${cfg.target})`,
      );
    }
    if (!report.ok) console.error(`beyond-pg verify: ${report.problem}`);
    return report.ok ? 0 : 1;
  } catch (error) {
    console.error(`beyond-pg verify: ${errorMessage(error)}`);
    return 1;
  }
}
