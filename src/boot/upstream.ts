/**
 * EFFECT: talking to the primary with PostgreSQL's own tools, as postgres, the password from
 * the passfile (boot/replication.ts): IDENTIFY_SYSTEM (is it our cluster?), pg_basebackup
 * (clone an empty volume), pg_rewind (bring a former primary back onto the new primary's
 * timeline). libpq does TLS and SCRAM channel binding; our own client does neither over TCP.
 */
import { upstreamConninfo } from "../config/replication_conf.ts";
import { pipeLines } from "../logs/lines.ts";
import { command } from "../process/command.ts";
import { spawnTracked } from "../process/registry.ts";
import { run, type RunOptions, type RunResult } from "../process/spawner.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import type { BootContext } from "./boot.ts";
import { upstreamOf } from "./replication.ts";

export interface UpstreamIdentity {
  sysid: string;
  timeline: number;
  lsn: string;
}

/** The tools' environment: nothing secret (the passfile is named in the conninfo). */
function toolEnv(): Record<string, string> {
  return { PGCONNECT_TIMEOUT: "5", PGAPPNAME: "beyond-pg" };
}

/** The most telling line of a libpq tool's stderr, without its program prefix. */
export function toolProblem(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.replace(/^\S+: (error: |fatal: )?/, "").trim())
    .filter((l) => l && !/^(detail|hint): /i.test(l) && !/^removing /.test(l));
  const telling = lines.find((l) =>
    /password|authentication|no pg_hba|could not connect|connection to server|timeout|refused|SSL|does not exist|already exists|not permitted|No space/i
      .test(l)
  );
  return telling ?? lines.at(-1) ?? "no output";
}

/**
 * One replication-protocol command (IDENTIFY_SYSTEM, TIMELINE_HISTORY) through psql on a
 * replication connection to `conninfo`: unaligned, tuples only, never a password prompt. The
 * result as is (a non-zero exit is the caller's to explain).
 */
export function replicationCommand(
  binDir: string,
  sql: string | string[],
  o: RunOptions & { conninfo: string },
): Promise<RunResult> {
  const { conninfo, ...options } = o;
  const target = `${conninfo} replication=true dbname=replication`;
  const commands = (typeof sql === "string" ? [sql] : sql).flatMap((c) => ["-c", c]);
  return run(`${binDir}/psql`, ["-X", "-A", "-t", "-w", "-d", target, ...commands], {
    ...options,
    check: false,
  });
}

/** IDENTIFY_SYSTEM on a replication connection; throws an OperatorError with the reason. */
export async function identifyUpstream(
  ctx: BootContext,
  at: { host: string; port: number },
): Promise<UpstreamIdentity> {
  const r = await replicationCommand(ctx.bins.binDir, "IDENTIFY_SYSTEM", {
    conninfo: upstreamConninfo(upstreamOf(ctx, at)),
    ...ctx.runAs.switchTo,
    env: toolEnv(),
    timeoutMs: 20_000,
  });
  const [sysid, tli, lsn] = r.stdout.trim().split("|");
  if (r.code !== 0 || !sysid || !/^\d+$/.test(sysid)) {
    throw new OperatorError(
      `cannot reach the primary ${at.host}:${at.port} as ${"beyond_replicator"}: ${
        toolProblem(r.stderr)
      }`,
    );
  }
  return { sysid, timeline: Number(tli), lsn: lsn ?? "" };
}

/** The primary's history file of `timeline` (TIMELINE_HISTORY on a replication connection). */
export async function upstreamHistory(
  ctx: BootContext,
  at: { host: string; port: number },
  timeline: number,
): Promise<string> {
  const r = await replicationCommand(ctx.bins.binDir, `TIMELINE_HISTORY ${Math.trunc(timeline)}`, {
    conninfo: upstreamConninfo(upstreamOf(ctx, at)),
    ...ctx.runAs.switchTo,
    env: toolEnv(),
    timeoutMs: 20_000,
  });
  const bar = r.stdout.indexOf("|");
  if (r.code !== 0 || bar < 0) {
    throw new OperatorError(
      `cannot read timeline ${timeline}'s history from ${at.host}:${at.port}: ${
        toolProblem(r.stderr)
      }`,
    );
  }
  return r.stdout.slice(bar + 1);
}

export interface CloneProgress {
  doneKb: number;
  totalKb: number;
  percent: number;
}

/** pg_basebackup's progress line: "12345/67890 kB (18%), 0/1 tablespace". */
export function parseProgress(line: string): CloneProgress | undefined {
  const m = line.match(/(\d+)\/(\d+) kB \((\d+)%\)/);
  return m ? { doneKb: Number(m[1]), totalKb: Number(m[2]), percent: Number(m[3]) } : undefined;
}

/**
 * pg_basebackup into `dir` (a staging directory: boot commits it like a first boot), the WAL
 * streamed alongside through our slot (created if the primary does not have it yet, so the
 * primary keeps our WAL from the start). Throws an OperatorError naming the problem.
 */
export async function cloneFrom(
  ctx: BootContext,
  at: { host: string; port: number },
  dir: string,
  o: { progress?: (p: CloneProgress) => void; signal?: AbortSignal } = {},
): Promise<void> {
  const up = upstreamOf(ctx, at);
  const attempt = async (createSlot: boolean) => {
    const child = spawnTracked(command(`${ctx.bins.binDir}/pg_basebackup`, {
      args: [
        "-d",
        upstreamConninfo(up),
        "-D",
        dir,
        "-X",
        "stream",
        "-c",
        "fast",
        "-P",
        "-w",
        "-S",
        up.name,
        ...(createSlot ? ["-C"] : []),
      ],
      env: toolEnv(),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      ...(ctx.runAs.switchTo ?? {}),
    }));
    const abort = () => {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
    };
    o.signal?.addEventListener("abort", abort, { once: true });
    const tail: string[] = [];
    await pipeLines(child.stderr, (line) => {
      const p = parseProgress(line);
      if (p) o.progress?.(p);
      else tail.push(line);
      if (tail.length > 20) tail.shift();
    });
    const status = await child.status;
    o.signal?.removeEventListener("abort", abort);
    return { ok: status.success, stderr: tail.join("\n") };
  };
  let r = await attempt(true);
  if (!r.ok && /already exists/.test(r.stderr)) r = await attempt(false);
  if (!r.ok) {
    throw new OperatorError(
      `cloning from the primary ${at.host}:${at.port} failed: ${toolProblem(r.stderr)}`,
    );
  }
}

/** One SQL statement on the primary as the replication role; its single value. */
async function sourceQuery(ctx: BootContext, conninfo: string, sql: string): Promise<string> {
  const r = await run(`${ctx.bins.binDir}/psql`, [
    "-X",
    "-A",
    "-t",
    "-w",
    "-d",
    conninfo,
    "-c",
    sql,
  ], {
    ...ctx.runAs.switchTo,
    env: toolEnv(),
    check: false,
    timeoutMs: 30_000,
  });
  if (r.code !== 0) throw new OperatorError(`on the primary: ${toolProblem(r.stderr)}`);
  return r.stdout.trim();
}

/**
 * A primary promoted moments ago still has its old timeline in pg_control until its first
 * checkpoint ends, and pg_rewind (≤ 15) reads the timeline from there: it would answer "no
 * rewind required" and leave a diverged former primary that then cannot follow ("requested
 * timeline 2 is not a child of this server's history"). So: when the source's checkpoint is on
 * an older timeline than its WAL, ask for a checkpoint (the role has pg_checkpoint) and wait.
 */
async function sourceCheckpointed(
  ctx: BootContext,
  at: { host: string; port: number },
  conninfo: string,
): Promise<void> {
  const check = `SELECT CASE WHEN pg_is_in_recovery() THEN 'ok' WHEN
      (SELECT timeline_id FROM pg_control_checkpoint()) <
      ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int
    THEN 'behind' ELSE 'ok' END`;
  const deadline = Date.now() + 60_000;
  let asked = false;
  while ((await sourceQuery(ctx, conninfo, check)) === "behind") {
    if (!asked) {
      log.info(
        `rewind: the primary ${at.host}:${at.port} was just promoted; waiting for its first checkpoint on the new timeline`,
      );
      await sourceQuery(ctx, conninfo, "CHECKPOINT").catch((e) =>
        log.warn(`rewind: CHECKPOINT on the primary: ${errorMessage(e)}; waiting for its own`)
      );
      asked = true;
    }
    if (Date.now() > deadline) {
      throw new OperatorError(
        `the primary ${at.host}:${at.port} has not checkpointed on its new timeline within 60 s; run CHECKPOINT there, then retry`,
      );
    }
    await sleep(250);
  }
}

/**
 * pg_rewind this (stopped) data directory onto the primary's timeline. A target that was not
 * shut down cleanly is recovered first by pg_rewind itself (single-user mode); a target that
 * never diverged needs nothing ("no rewind required"). Returns pg_rewind's last line.
 */
export async function rewindFrom(
  ctx: BootContext,
  at: { host: string; port: number },
): Promise<string> {
  const conninfo = `${upstreamConninfo(upstreamOf(ctx, at))} dbname=postgres`;
  await sourceCheckpointed(ctx, at, conninfo);
  const r = await run(`${ctx.bins.binDir}/pg_rewind`, [
    `--target-pgdata=${ctx.layout.pgdata}`,
    `--source-server=${conninfo}`,
  ], {
    ...ctx.runAs.switchTo,
    cwd: ctx.layout.pgdata,
    env: toolEnv(),
    check: false,
    timeoutMs: 3600_000,
  });
  if (r.code !== 0) {
    throw new OperatorError(
      `pg_rewind against the primary ${at.host}:${at.port} failed: ${toolProblem(r.stderr)}`,
    );
  }
  return (r.stdout + r.stderr).trim().split("\n").filter(Boolean).at(-1) ?? "done";
}
