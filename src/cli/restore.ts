/**
 * `beyond-pg restore (--to-time T | --to-lsn L | --latest) [--backup LABEL] [--serve]`:
 * point-in-time restore into an empty data root. Chooses the newest base backup consistent
 * before the target, streams it in (backup/restore.ts), then boots through the normal
 * supervisor path: postgres replays archived WAL (restore-wal, prefetched by the supervisor),
 * stops at the target and promotes. Then it stops cleanly (or keeps running with --serve).
 * Any failure leaves the data root empty again, with one line saying why.
 */
import { type BackupManifest, parseTargetTime, type RestoreTarget } from "../backup/manifest.ts";
import type { ChainResult } from "../backup/chain.ts";
import { planRestore } from "../backup/restore_plan.ts";
import { ownerSysid, requireTarget } from "../backup/resolve.ts";
import {
  checkEmpty,
  DownloadInterrupted,
  fetchBackup,
  RECOVERY_CONF,
  wipeRestore,
} from "../backup/restore.ts";
import { lockDataRoot } from "../boot/lock.ts";
import { makeTrees } from "../boot/trees.ts";
import { buildContext } from "../boot/context.ts";
import { Admin } from "../supervise/admin.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { parseLsn, SEGMENT_BYTES } from "../wal/names.ts";
import { archiveConfigFor } from "../boot/archive_config.ts";
import { parseArgs } from "./args.ts";
import { StopLatch } from "../app/latch.ts";
import { runDatabase } from "../app/root.ts";
import { sleep } from "../util/sleep.ts";

const USAGE =
  "usage: restore (--to-time '2026-11-23 15:30:00+00' | --to-lsn 0/3000000 | --latest) [--timeline N|newest] [--backup LABEL] [--serve] [--promote-as-primary] [--accept-gap]";

function parseTarget(values: Map<string, string>, flags: Set<string>): RestoreTarget | string {
  const given = [values.has("to-time"), values.has("to-lsn"), flags.has("latest")].filter(Boolean);
  if (given.length !== 1) return `give exactly one of --to-time, --to-lsn, --latest; ${USAGE}`;
  if (flags.has("latest")) return { kind: "latest" };
  if (values.has("to-lsn")) {
    const lsn = parseLsn(values.get("to-lsn")!);
    return lsn === undefined
      ? `--to-lsn ${JSON.stringify(values.get("to-lsn"))} is not an LSN (like 0/3000148)`
      : { kind: "lsn", lsn };
  }
  const t = parseTargetTime(values.get("to-time")!);
  return t
    ? { kind: "time", at: t.at, text: t.text }
    : `--to-time ${
      JSON.stringify(values.get("to-time"))
    } is not a timestamp (like 2026-11-23 15:30:00.123+00; no zone means UTC)`;
}

/** Postgres's words for a target it cannot reach, in ours (`chain`: what the archive holds). */
function explainRecoveryFailure(message: string, chain: ChainResult | undefined): string {
  if (/recovery ended before configured recovery target was reached/.test(message)) {
    if (chain && !chain.ok) return `the target is beyond a hole in the archive: ${chain.problem}`;
    return "the target is after the last transaction in the archived WAL (postgres stops at a time only when it sees a commit after it); restore with --latest, or choose an earlier target";
  }
  if (/before consistent recovery point/.test(message)) {
    return "the target is before the end of the chosen base backup; choose a later target";
  }
  return message;
}

export async function main(args: string[]): Promise<number> {
  const parsed = parseArgs(args, {
    values: ["to-time", "to-lsn", "backup", "timeline"],
    flags: ["latest", "serve", "promote-as-primary", "accept-gap"],
  });
  if (typeof parsed === "string") {
    console.error(`beyond-pg restore: ${parsed}; ${USAGE}`);
    return 2;
  }
  const target = parseTarget(parsed.values, parsed.flags);
  if (typeof target === "string") {
    console.error(`beyond-pg restore: ${target}`);
    return 2;
  }
  const timeline = parsed.values.get("timeline");
  if (timeline !== undefined && !/^(newest|latest|[1-9]\d{0,9})$/.test(timeline)) {
    console.error(
      `beyond-pg restore: --timeline ${JSON.stringify(timeline)} is not a number or newest`,
    );
    return 2;
  }
  const acceptGap = parsed.flags.has("accept-gap");
  let ctx;
  try {
    ctx = await buildContext();
    requireTarget(ctx);
    checkEmpty(ctx);
  } catch (error) {
    console.error(`beyond-pg restore: ${errorMessage(error)}`);
    return 2;
  }
  let chosen: BackupManifest;
  let base: BackupManifest[];
  let chain: ChainResult | undefined;
  let prepared = false;
  try {
    makeTrees(ctx.trees);
    const lock = await lockDataRoot(ctx.trees.data, ctx.layout.lockFile);
    try {
      checkEmpty(ctx); // again, now that nobody else can start here
      const cfg = archiveConfigFor(ctx, await ownerSysid(ctx))!;
      const plan = await planRestore(cfg, target, {
        ...(timeline ? { timeline } : {}),
        ...(parsed.values.get("backup") ? { backup: parsed.values.get("backup")! } : {}),
      });
      chosen = plan.backup;
      base = plan.backups;
      chain = plan.chain;
      log.info(
        `restore: base backup ${chosen.label} (consistent at ${chosen.stop_lsn}, ${chosen.stop_time}) from ${cfg.target}, following timeline ${plan.lineage.timeline}${
          plan.ownerTimeline === plan.lineage.timeline ? " (the primary's)" : ""
        }${base.length > 1 ? ` (incremental: ${base.map((b) => b.label).join(", ")})` : ""}`,
      );
      if (!plan.chain.ok && target.kind !== "time") {
        if (!acceptGap) {
          throw new OperatorError(
            `cannot restore ${
              target.kind === "latest" ? "to the latest point" : "to that LSN"
            }: ${plan.chain.problem}; restore to an earlier target, or give --accept-gap to restore up to the hole on purpose`,
            { exitCode: 2 },
          );
        }
        log.warn(`restore: ${plan.chain.problem}; restoring up to the hole (--accept-gap)`);
      }
      const tty = Deno.stderr.isTerminal();
      const enc = new TextEncoder();
      prepared = true;
      const { seconds, resumed, reused, reusedBytes, discarded } = await fetchBackup(
        ctx,
        cfg,
        base,
        target,
        {
          ...(tty
            ? { progress: (line: string) => Deno.stderr.writeSync(enc.encode(`\r\x1b[K${line}`)) }
            : {}),
          timeline: String(plan.lineage.timeline),
        },
      );
      if (tty) Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
      log.info(
        `restore: ${(chosen.bytes / 2 ** 20).toFixed(1)} MiB restored in ${seconds.toFixed(1)} s (${
          (chosen.bytes / 2 ** 20 / seconds).toFixed(1)
        } MiB/s${resumed ? `; ${resumed} range(s) resumed after a stall or reset` : ""}${
          reused
            ? `; ${reused} part(s) (${
              (reusedBytes / 2 ** 20).toFixed(1)
            } MiB) kept by an interrupted restore reused, each checked by SHA-256`
            : ""
        }${
          discarded
            ? `; ${discarded} kept part(s) failed their SHA-256 and were downloaded again`
            : ""
        }); recovering${
          target.kind === "latest"
            ? " to the end of the archived WAL"
            : target.kind === "time"
            ? ` to ${target.text}`
            : ` to ${parsed.values.get("to-lsn")}`
        }`,
      );
    } finally {
      lock.close();
    }

    // Recovery through the normal boot: failFast turns a FATAL into an error, not a retry.
    const latch = new StopLatch();
    latch.listenToSignals();
    const stop = (why: string) => latch.request(why);
    let summary = "";
    let readyError: unknown;
    const c = ctx;
    const serve = parsed.flags.has("serve");
    let promoted = false;
    let finished = false;
    let code: number;
    try {
      code = await runDatabase(ctx, {
        latch,
        inOwnVm: false,
        failFast: () => !promoted,
        archivePromote: parsed.flags.has("promote-as-primary"),
        onReady: async () => {
          const admin = new Admin({
            socketDir: c.layout.socketDir,
            directPort: c.settings.directPort,
            pgbouncerPort: c.settings.port,
            password: c.settings.password,
          });
          try {
            // A hot standby accepts connections before the target is reached: wait for the
            // promotion. If postgres stops instead (FATAL), failFast stops the supervisor with
            // postgres's reason, which is the error to report, not a refused connection here.
            for (;;) {
              if (finished) return;
              const rec = await admin.query("SELECT pg_is_in_recovery() AS rec").then(
                (rows) => rows[0]?.["rec"],
                () => undefined,
              );
              if (rec === "f") break;
              await sleep(100);
            }
            const [row] = await admin.query(
              "SELECT pg_current_wal_lsn()::text AS lsn, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) AS tli",
            );
            if (!row) throw new Error("postgres did not answer");
            promoted = true;
            const endLsn = parseLsn(row["lsn"] ?? "") ?? 0n;
            // --latest must have replayed all the archive holds on the lineage (a hole would
            // have ended it early, and that must not look like success).
            if (
              target.kind === "latest" && chain?.ok && endLsn < chain.end - BigInt(SEGMENT_BYTES)
            ) {
              throw new OperatorError(
                `recovery ended at ${
                  row["lsn"]
                }, before the end of the archived WAL (${chain.last}); the archive is not continuous: check it with \`beyond-pg backups list\``,
              );
            }
            summary = `restored and promoted: timeline ${parseInt(row["tli"] ?? "0", 16)}, WAL at ${
              row["lsn"]
            }`;
            c.trees.data.remove(`${c.layout.confDir}/${RECOVERY_CONF}`, false);
            log.info(summary);
          } catch (error) {
            readyError = error;
          } finally {
            await admin.close();
          }
          if (!serve || readyError) {
            stop(readyError ? "restore check failed" : "restore complete");
          }
        },
      });
    } finally {
      finished = true;
    }
    if (readyError) throw new OperatorError(errorMessage(readyError));
    if (!summary) throw new OperatorError("recovery did not complete");
    console.log(`beyond-pg restore: ${summary} (from backup ${chosen.label})`);
    return code;
  } catch (error) {
    if (prepared) {
      try {
        wipeRestore(ctx, { keepParts: error instanceof DownloadInterrupted });
      } catch (wipe) {
        console.error(
          `beyond-pg restore: could not clean up ${ctx.layout.dataRoot}: ${errorMessage(wipe)}`,
        );
      }
    }
    console.error(
      `beyond-pg restore: ${explainRecoveryFailure(errorMessage(error), chain)}${
        prepared
          ? `; ${ctx.layout.dataRoot} is empty again${
            error instanceof DownloadInterrupted ? " (but for the parts kept to continue)" : ""
          }`
          : ""
      }`,
    );
    return error instanceof OperatorError && error.exitCode ? error.exitCode : 1;
  }
}
