/**
 * EFFECT: `verify --restore-test` — restore a backup for real, then throw it away. The backup
 * (the newest on the primary's lineage, or one by label; with the incrementals it builds on) is
 * brought into a temporary data root on the data volume (`<data root>/.restore-test`) by the
 * restore's own code (restore_plan.ts planRestore, restore.ts fetchBackup: the same checks,
 * tar as postgres and the same check of what it made, pg_combinebackup for a chain). Postgres then starts on it as postgres's
 * user, on a private socket and no TCP, not archiving, and recovers to the end of the archived
 * WAL, as `restore --latest` would. Then every database that accepts connections must answer
 * `select 1`; then postgres stops and the temporary root is removed, whatever happened.
 *
 * To the end of the WAL, not just to consistency: `verify` reads each WAL file back but checks
 * only its headers; replaying it checks every record's CRC and that it applies. The cost is the
 * WAL since the backup: small for the newest backup, the default.
 *
 * The credentials never reach postgres: root fetches the WAL recovery needs beforehand into the
 * temporary root, and postgres's restore_command only copies from there.
 */
import { pipeLines } from "../logs/lines.ts";
import { chainFiles } from "./chain.ts";
import { planRestore } from "./restore_plan.ts";
import { fetchBackup, type RestoreSite } from "./restore.ts";
import { PgTree } from "../fs/tree.ts";
import { withIncludeDir } from "../config/postgresql_conf.ts";
import { backupDir, holdLock } from "./backup_dir.ts";
import { runDirFrom } from "../settings/defaults.ts";
import { command } from "../process/command.ts";
import { outputTracked, spawnTracked } from "../process/registry.ts";
import { shellQuote } from "../process/self.ts";
import { errorMessage } from "../util/errors.ts";
import { sleep } from "../util/sleep.ts";
import { clientFor } from "../wal/archive.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import { formatLsn, parseLsn, SEGMENT_BYTES } from "../wal/names.ts";
import { fetchWal, writeWalFile } from "../wal/restore.ts";

export interface RestoreTestResult {
  ok: boolean;
  /** The backup restored (the last of `backups` when it is incremental). */
  backup?: string;
  backups: string[];
  /** Where WAL replay ended (after promotion), and where the archived WAL ends. */
  recoveredTo?: string;
  walEnd?: string;
  /** The databases that answered `select 1`. */
  databases: string[];
  seconds: number;
  /** One line, when not ok. */
  problem?: string;
}

export interface RestoreTestOptions {
  backup?: string;
  progress?: (line: string) => void;
  /** Give up on recovery after this long (default 6 h). */
  timeoutMs?: number;
}

/** The temporary data root, beside `main` on the data volume (sized for a copy of it). */
export function restoreTestRoot(cfg: Pick<ArchiveConfig, "pgdata">): string {
  return `${cfg.pgdata.replace(/\/[^/]+\/?$/, "")}/.restore-test`;
}

export async function restoreTest(
  cfg: ArchiveConfig,
  o: RestoreTestOptions = {},
): Promise<RestoreTestResult> {
  const t0 = performance.now();
  const r: RestoreTestResult = { ok: false, backups: [], databases: [], seconds: 0 };
  const temp = restoreTestRoot(cfg);
  const dataRoot = temp.slice(0, temp.lastIndexOf("/")) || "/";
  const owner = cfg.runAs;
  // Postgres's data volume: everything here runs as postgres (fs/tree.ts).
  const volume = new PgTree(dataRoot, owner);
  let pg: Deno.ChildProcess | undefined;
  let release: (() => void) | undefined;
  try {
    // One restore test at a time (they share the temporary root).
    release = await holdLock(
      backupDir(runDirFrom()),
      "restore-test.lock",
      o.backup ? { backup: o.backup } : {},
      (h) =>
        `another restore test is running (${h.trim() || "just started"}); wait for it to finish`,
    );
    if (!volume.exists(dataRoot)) {
      throw new Error(
        `the data root ${dataRoot} does not exist here; run the restore test where the database runs`,
      );
    }
    volume.remove(temp); // left by a restore test that was killed
    volume.ensureDir(temp, 0o700);
    const data = volume.sub(temp);
    const site: RestoreSite = {
      layout: { dataRoot: temp, pgdata: `${temp}/main`, walDir: `${temp}/wal` },
      trees: { data },
      runAs: { switchTo: owner },
    };
    const plan = await planRestore(cfg, { kind: "latest" }, o.backup ? { backup: o.backup } : {});
    r.backup = plan.backup.label;
    r.backups = plan.backups.map((b) => b.label);
    if (!plan.chain.ok) throw new Error(`backup ${plan.backup.label}: ${plan.chain.problem}`);
    r.walEnd = formatLsn(plan.chain.end);

    // The WAL recovery reads, fetched by root (the credentials stay here), checked and decoded.
    const archive = `${temp}/archive`;
    data.ensureDir(archive, 0o700);
    const files = chainFiles({
      archived: plan.archived,
      lineage: plan.lineage,
      start: { lsn: parseLsn(plan.backup.start_lsn) ?? 0n, timeline: plan.backup.timeline },
    }, plan.chain.last);
    const client = clientFor(cfg);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(4, files.length) }, async () => {
        while (next < files.length) {
          const name = files[next++]!;
          const bytes = await fetchWal(client, cfg, name);
          if (!bytes) throw new Error(`${name} vanished from the archive during the restore test`);
          writeWalFile(data, `${archive}/${name}`, bytes);
        }
      }),
    );
    client.close();
    o.progress?.(`restore test: ${files.length} WAL file(s) fetched; restoring ${r.backup}`);

    await fetchBackup(site, cfg, plan.backups, { kind: "latest" }, {
      timeline: String(plan.lineage.timeline),
      keepParts: false,
      restoreCommand: `cp ${shellQuote(archive)}/%f "%p"`,
      ...(o.progress ? { progress: o.progress } : {}),
    });

    // postgresql.conf includes conf.d by its absolute path: the primary's. This copy's instead
    // (as boot does), or the recovery settings just written would not be read.
    const conf = `${site.layout.pgdata}/postgresql.conf`;
    data.writeAtomic(
      conf,
      withIncludeDir(data.readText(conf) ?? "", `${site.layout.pgdata}/conf.d`),
      0o600,
    );

    // Only postgres's user can reach the socket directory: trust is no wider than that.
    const sock = `${temp}/sock`;
    data.ensureDir(sock, 0o700);
    data.writeAtomic(`${temp}/hba.conf`, "local all all trust\n", 0o600);
    data.writeAtomic(`${temp}/ident.conf`, "", 0o600);
    const lines: string[] = [];
    pg = spawnTracked(
      command(`${cfg.binDir}/postgres`, {
        args: [
          "-D",
          site.layout.pgdata,
          ...[
            `port=${cfg.port}`,
            "listen_addresses=",
            `unix_socket_directories=${sock}`,
            `hba_file=${temp}/hba.conf`,
            `ident_file=${temp}/ident.conf`,
            "external_pid_file=",
            // Never into the archive: a promoted restore test must not write a timeline there.
            "archive_mode=off",
            // No queries until promoted: and none of hot standby's parameter checks.
            "hot_standby=off",
            "ssl=off",
            "logging_collector=off",
            "log_destination=stderr",
            // Beside the running primary: small memory, no huge pages.
            "shared_buffers=32MB",
            "huge_pages=off",
          ].flatMap((c) => ["-c", c]),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      }),
    );
    const logDone = pipeLines(pg.stderr, (l) => {
      // Not the refusals of our own connection attempts while it recovers.
      if (/\b(FATAL|PANIC|ERROR):/.test(l) && !/the database system is/.test(l)) {
        lines.push(l.replace(/^.*?\b(FATAL|PANIC|ERROR):\s+/, "$1: ").trim());
      }
    });
    let exited: Deno.CommandStatus | undefined;
    pg.status.then((s) => (exited = s));
    const sql = async (text: string, db = "postgres") => {
      const out = await outputTracked(
        command(`${cfg.binDir}/psql`, {
          args: ["-h", sock, "-p", String(cfg.port), "-U", "postgres", "-XAtqc", text],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { PGDATABASE: db, PGAPPNAME: "beyond-pg verify", PGCONNECT_TIMEOUT: "10" },
          ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
        }),
      );
      const dec = new TextDecoder();
      if (!out.success) throw new Error(dec.decode(out.stderr).trim().split("\n").pop());
      return dec.decode(out.stdout).trim();
    };

    // Recovery: wait for the promotion at the end of the archived WAL, or for postgres to stop.
    const timeoutMs = o.timeoutMs ?? 6 * 3600_000;
    const deadline = performance.now() + timeoutMs;
    o.progress?.(`restore test: recovering ${r.backup} to the end of the archived WAL`);
    for (;;) {
      if (exited) {
        await logDone;
        throw new Error(
          `postgres stopped during recovery (exit ${exited.code}): ${lines.at(-1) ?? "no message"}`,
        );
      }
      const rec = await sql("select pg_is_in_recovery()").catch(() => undefined);
      if (rec === "f") break;
      if (performance.now() > deadline) {
        throw new Error(`recovery did not finish in ${timeoutMs / 1000} s`);
      }
      await sleep(250);
    }
    const lsn = await sql("select pg_current_wal_lsn()");
    r.recoveredTo = lsn;
    // As `restore --latest` checks: all the archive holds on the lineage was replayed.
    if ((parseLsn(lsn) ?? 0n) < plan.chain.end - BigInt(SEGMENT_BYTES)) {
      throw new Error(
        `recovery ended at ${lsn}, before the end of the archived WAL (${plan.chain.last})`,
      );
    }
    const dbs = (await sql("select datname from pg_database where datallowconn order by 1"))
      .split("\n").filter(Boolean);
    if (!dbs.length) throw new Error("no database accepts connections");
    for (const db of dbs) {
      const one = await sql("select 1", db).catch((e) => errorMessage(e));
      if (one !== "1") throw new Error(`database ${JSON.stringify(db)} did not answer: ${one}`);
      r.databases.push(db);
    }
    r.ok = true;
  } catch (error) {
    r.problem = `restore test of ${r.backup ? `backup ${r.backup}` : "the backup"} failed: ${
      errorMessage(error)
    }`;
  } finally {
    if (pg) await stopPostgres(pg);
    try {
      if (release) volume.remove(temp); // not another restore test's
    } catch (error) {
      r.ok = false;
      r.problem ??= `restore test: could not remove ${temp}: ${errorMessage(error)}`;
    }
    release?.();
    r.seconds = (performance.now() - t0) / 1000;
  }
  return r;
}

/** Fast shutdown; immediate if that takes more than a minute. */
async function stopPostgres(pg: Deno.ChildProcess): Promise<void> {
  const signal = (s: Deno.Signal) => {
    try {
      pg.kill(s);
    } catch { /* exited */ }
  };
  signal("SIGINT");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 60_000)));
  if (await Promise.race([pg.status, late]) === "late") {
    signal("SIGQUIT");
    await pg.status;
  }
  clearTimeout(timer);
}

/** One line for people. */
export function describeRestoreTest(r: RestoreTestResult): string {
  return r.ok
    ? `restore test: backup ${
      r.backups.join(" + ")
    } restored and recovered to ${r.recoveredTo} (the archived WAL ends at ${r.walEnd}); ${r.databases.length} database(s) answered select 1, in ${
      r.seconds.toFixed(1)
    } s`
    : `restore test FAILED: ${r.problem}`;
}
