/**
 * EFFECT: bring a base backup into an empty data root, ready for recovery to a target.
 * Streamed (S3 → tar with its own zstd, no local copy of the archive), verified (SHA-256 and size of the
 * stored object), extracted into a staging directory and committed by renames: `main` appears
 * only once it is complete, with recovery.signal and conf.d/04-recovery.conf in place. The
 * supervisor's normal boot then runs recovery (see cli/restore.ts).
 *
 * The backup is untrusted input (whoever holds the bucket's keys can write it): tar runs as
 * postgres (who runs whatever a restored data directory holds anyway: it is no more than that),
 * what it unpacked is refused unless it is only regular files and directories (strayMember, as
 * postgres), and every file operation in the data root afterwards runs as postgres too
 * (fs/tree.ts PgTree), so nothing in the restored tree can lead root anywhere.
 */
import type { Context } from "../boot/context.ts";
import type { Owner, PgTree } from "../fs/tree.ts";
import { quoteConfValue } from "../config/conf_file.ts";
import { command } from "../process/command.ts";
import { outputTracked, spawnTracked } from "../process/registry.ts";
import { selfCommand } from "../process/self.ts";
import { concat } from "../util/bytes.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { clientFor, layoutFor } from "../wal/archive.ts";
import { downloadRanges, type DownloadStats } from "./download.ts";
import { PartSpool } from "./part_spool.ts";
import { S3Error } from "../s3/client.ts";
import { archiveKeys, keyProblem } from "../wal/keys.ts";
import { EnvelopeError, loadCrypto, openStream } from "../wal/envelope.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import { formatLsn } from "../wal/names.ts";
import type { BackupManifest, RestoreTarget } from "./manifest.ts";

export const RECOVERY_CONF = "04-recovery.conf";

/**
 * Where a backup is brought in: a data root, postgres's tree over it and who postgres is. A
 * boot Context is one (restore); `verify --restore-test` makes one for a temporary root.
 */
export interface RestoreSite {
  layout: Pick<Context["layout"], "dataRoot" | "pgdata" | "walDir">;
  trees: { data: PgTree };
  runAs: { switchTo?: Owner | undefined };
}

/**
 * PURE: the recovery settings for a target. Timeline: the one the restore follows, by number
 * (the prefix's primary's, unless --timeline said otherwise: restore_plan.ts), so a branch that
 * a test restore made can never redirect a restore; without one, the newest.
 */
export function recoveryConf(
  target: RestoreTarget,
  restoreCommand: string,
  timeline?: string,
): string {
  const tli = timeline ?? "latest";
  const lines = [
    "# Written by `beyond-pg restore`; removed once the restore has promoted.",
    `restore_command = ${quoteConfValue(restoreCommand)}`,
    `recovery_target_timeline = ${quoteConfValue(tli)}`,
  ];
  if (target.kind === "time") {
    lines.push(`recovery_target_time = ${quoteConfValue(target.text)}`);
  }
  if (target.kind === "lsn") lines.push(`recovery_target_lsn = '${formatLsn(target.lsn)}'`);
  if (target.kind !== "latest") {
    lines.push("recovery_target_inclusive = on", "recovery_target_action = 'promote'");
  }
  return lines.join("\n") + "\n";
}

/** Entries that may sit in a data root we restore into. */
const IGNORABLE = new Set([
  ".beyond-pg.lock",
  "lost+found",
  "restore-spool",
  ".restore-staging",
  ".restore-test", // verify --restore-test's, if one was killed (trial_restore.ts)
]);

export function checkEmpty(ctx: RestoreSite): void {
  const root = ctx.layout.dataRoot;
  let entries: string[] = [];
  try {
    entries = ctx.trees.data.list(root).map((e) => e.name).filter((n) => !IGNORABLE.has(n));
  } catch { /* no data root yet: empty */ }
  if (entries.length) {
    throw new OperatorError(
      `${root} is not empty (${entries.slice(0, 3).join(", ")}${
        entries.length > 3 ? ", …" : ""
      }); restore needs an empty data root: move the old data away or use a new volume`,
      { exitCode: 2 },
    );
  }
}

async function freeBytes(dir: string): Promise<number | undefined> {
  const out = await outputTracked(
    command("df", {
      args: ["-P", "-B1", dir],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }),
  ).catch(() => undefined);
  if (!out?.success) return undefined;
  const fields = new TextDecoder().decode(out.stdout).trim().split("\n").pop()?.split(/\s+/);
  const avail = Number(fields?.[3]);
  return Number.isFinite(avail) ? avail : undefined;
}

/**
 * A download cut off for good (the store stayed away past every retry): the parts downloaded
 * so far are kept (part_spool.ts), and the same restore run again continues from them.
 */
export class DownloadInterrupted extends OperatorError {}

/** Where a restore keeps the parts it downloaded (part_spool.ts). */
export function partsDir(ctx: RestoreSite): string {
  return `${ctx.layout.dataRoot}/.restore-staging/parts`;
}

/**
 * Remove what a failed restore left: the data root ends up as it was (empty), but for the
 * downloaded parts when `keepParts` (an interrupted download: the next attempt continues).
 */
export function wipeRestore(ctx: RestoreSite, o: { keepParts?: boolean } = {}): void {
  const data = ctx.trees.data;
  for (const name of ["main", "wal", "restore-spool"]) {
    data.remove(`${ctx.layout.dataRoot}/${name}`);
  }
  clearStaging(ctx, o.keepParts ? undefined : []);
}

/** Empty the staging directory, keeping the parts of the backups `keep` names (all: undefined). */
function clearStaging(ctx: RestoreSite, keep: string[] | undefined): void {
  const data = ctx.trees.data;
  const staging = `${ctx.layout.dataRoot}/.restore-staging`;
  if (keep !== undefined && !keep.length) {
    data.remove(staging);
    return;
  }
  for (const e of data.list(staging)) {
    if (e.name !== "parts") data.remove(`${staging}/${e.name}`);
  }
  for (const e of data.list(partsDir(ctx))) {
    if (keep && !keep.includes(e.name)) data.remove(`${partsDir(ctx)}/${e.name}`);
  }
}

/**
 * Stream one backup into `dir` (S3 ranges → open if sealed → tar -x with zstd, as postgres),
 * checking size and SHA-256 of what was stored (zstd checks its frames' checksums), then what
 * tar made (strayMember).
 */
async function extractOne(
  ctx: RestoreSite,
  cfg: ArchiveConfig,
  m: BackupManifest,
  dir: string,
  o: { progress?: (line: string) => void; parallel?: number; keepParts?: boolean },
): Promise<{ resumed: number; reused: number; reusedBytes: number; discarded: number }> {
  const { createHash } = await import("node:crypto"); // not at the top: see basebackup.ts
  const progress = o.progress;
  const { layout } = ctx;
  const owner = ctx.runAs.switchTo;
  const client = clientFor(cfg);
  try {
    const key = layoutFor(cfg).backup(m.label, m.object);
    let head;
    try {
      head = await client.head(key);
    } catch (error) {
      throw new OperatorError(errorMessage(error), { cause: error });
    }
    if (!head) {
      throw new OperatorError(
        `backup ${m.label} has a manifest but no ${m.object}; choose another`,
      );
    }
    // Parts kept by an earlier attempt at this restore are used once they pass their SHA-256;
    // parts downloaded now are kept until the restore is done (part_spool.ts).
    const spool = o.keepParts && m.part_sha256
      ? PartSpool.open(
        ctx.trees.data,
        `${partsDir(ctx)}/${m.label}`,
        JSON.stringify({ key, etag: head.etag ?? "", size: head.size }),
      )
      : undefined;
    // Ranged GETs, a few at once, each resumed where it stopped (download.ts).
    const stats: DownloadStats = {
      resumed: 0,
      refetched: 0,
      reused: 0,
      reusedBytes: 0,
      discarded: 0,
    };
    const stream = downloadRanges(client, key, {
      size: head.size,
      ...(head.etag ? { etag: head.etag } : {}),
      ...(m.part_size && m.part_sha256 ? { partSize: m.part_size, partSha256: m.part_sha256 } : {}),
      // Ranges wait in memory: at most ~256 MiB of them (large clusters have large parts).
      parallel: o.parallel ??
        Math.max(1, Math.min(3, Math.floor((256 << 20) / (m.part_size ?? 16 << 20)))),
      stats,
      ...(spool ? { cache: spool } : {}),
    });
    // tar unpacks and decompresses (its own zstd child), as postgres: the stream of the stored
    // bytes is all that passes through here (~20× less than the unpacked tar).
    const tar = spawnTracked(
      command("tar", {
        // Never keeping ownership or modes from the archive beyond the usual; no `-P`: tar strips
        // a leading `/`, skips members with `..`, and makes a link that points out of `dir` only
        // at the end (a placeholder till then), so nothing is written through it.
        args: [
          "-x",
          "-f",
          "-",
          "-C",
          dir,
          "--no-same-owner",
          "--no-same-permissions",
          // 1 MiB records (20 blocks by default): a 1.2 GB backup unpacked here in 1.6–1.8 s
          // instead of 2.2–2.4 s. zstd keeps its I/O thread (unlike archiving's many small
          // ones, a restore is one stream where wall time is what counts); -v: it prints how
          // many bytes it unpacked (unpackedBytes).
          "--blocking-factor=2048",
          "--use-compress-program=zstd -v",
        ],
        stdin: "piped",
        stdout: "null",
        stderr: "piped",
        ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
      }),
    );
    const hash = createHash("sha256");
    let got = 0;
    let lastReport = 0;
    // The stored bytes are hashed as they arrive; sealed ones are opened after that.
    const tapped = stream.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, ctl) {
          hash.update(chunk);
          got += chunk.length;
          ctl.enqueue(chunk);
        },
      }),
    );
    const keys = m.encryption ? await archiveKeys(cfg) : [];
    const source = m.encryption
      ? tapped.pipeThrough(openStream(await loadCrypto(), keys, `backup ${m.label}`))
      : tapped;
    // Into tar until it ends. If tar fails first (bytes it cannot unpack), reading goes on for up
    // to one more part, unwritten: wrong bytes in the part that streamed are then named by its
    // SHA-256 (an S3Error) or the whole object's, not by what tar made of them.
    let complete = false;
    const download = (async () => {
      const reader = source.getReader();
      const writer = tar.stdin.getWriter();
      let tarGone = false;
      let after = 0;
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            complete = true;
            return;
          }
          if (progress && performance.now() - lastReport > 500) {
            lastReport = performance.now();
            progress(
              `restoring ${m.label}: ${(got / 2 ** 20).toFixed(0)} / ${
                (m.stored_bytes / 2 ** 20).toFixed(0)
              } MiB`,
            );
          }
          if (!tarGone) {
            await writer.write(value).catch(() => (tarGone = true));
          } else if ((after += value.length) > (m.part_size ?? 16 << 20)) {
            return;
          }
        }
      } finally {
        if (!complete) await reader.cancel().catch(() => {}); // the ranges in flight stop
        await writer.close().catch(() => {});
      }
    })();
    const [dl, tErr, tStatus] = await Promise.allSettled([
      download,
      boundedText(tar.stderr),
      tar.status,
    ]);
    const tarMessage = tErr.status === "fulfilled" ? tErr.value : "";
    if (/No space left/i.test(tarMessage)) {
      throw new OperatorError(
        `no space left in ${layout.dataRoot} while restoring ${m.label}; grow the volume`,
      );
    }
    if (dl.status === "rejected") {
      // A download that failed ends the stream: tar's "unexpected EOF" is its consequence, not
      // the reason (a tar that failed first breaks the pipe, which is not an S3 error).
      if (dl.reason instanceof EnvelopeError) throw new OperatorError(dl.reason.message);
      if (spool && dl.reason instanceof S3Error && dl.reason.transient) {
        const k = spool.kept();
        throw new DownloadInterrupted(
          `downloading backup ${m.label} failed: ${
            errorMessage(dl.reason)
          }; the ${k.parts} part(s) downloaded (${
            (k.bytes / 2 ** 20).toFixed(1)
          } MiB) are kept: run the same restore again to continue from them`,
        );
      }
      if (dl.reason instanceof S3Error) {
        throw new OperatorError(`downloading backup ${m.label} failed: ${errorMessage(dl.reason)}`);
      }
    } else if (complete) {
      // All of it came: bytes that are not what was stored explain whatever tar made of them.
      const sha = hash.digest("hex");
      if (got !== m.stored_bytes || sha !== m.sha256) {
        throw new OperatorError(
          `backup ${m.label} in the archive is corrupt (${got} bytes, sha256 ${
            sha.slice(0, 16)
          }…; the manifest says ${m.stored_bytes} bytes, ${
            m.sha256.slice(0, 16)
          }…); restore from another backup`,
        );
      }
    }
    if (tStatus.status === "rejected" || !tStatus.value.success) {
      throw new OperatorError(`extracting backup ${m.label} failed: ${tarReason(tarMessage)}`);
    }
    if (dl.status === "rejected") {
      throw new OperatorError(`downloading backup ${m.label} failed: ${errorMessage(dl.reason)}`);
    }
    // tar succeeded: it must have read every stored byte, and they must unpack to what the
    // backup wrote (the manifest's size of the tar stream).
    if (!complete) {
      throw new OperatorError(
        `extracting backup ${m.label} failed: tar ended after ${got} of ${m.stored_bytes} stored bytes`,
      );
    }
    const unpacked = unpackedBytes(tarMessage);
    if (unpacked !== m.bytes) {
      throw new OperatorError(
        `backup ${m.label} unpacked to ${
          unpacked ?? "an unknown number of"
        } bytes, expected ${m.bytes}; restore from another backup`,
      );
    }
    const refused = await strayMember(dir, owner);
    if (refused) {
      throw new OperatorError(
        `backup ${m.label} refused: member ${refused}; it was not made by beyond-pg backup (restore from another backup)`,
      );
    }
    return {
      resumed: stats.resumed + stats.refetched,
      reused: stats.reused ?? 0,
      reusedBytes: stats.reusedBytes ?? 0,
      discarded: stats.discarded ?? 0,
    };
  } finally {
    client.close();
  }
}

/**
 * A child's stderr, at most its first and last 4 KiB: a forged backup can make tar warn once
 * per member, millions of times.
 */
async function boundedText(stream: ReadableStream<Uint8Array>): Promise<string> {
  const LIMIT = 4096;
  let head: Uint8Array = new Uint8Array(0);
  let tail: Uint8Array = new Uint8Array(0);
  let total = 0;
  for await (const chunk of stream) {
    total += chunk.length;
    const take = chunk.subarray(0, Math.max(0, LIMIT - head.length));
    head = concat([head, take]);
    tail = concat([tail, chunk.subarray(take.length)]).slice(-LIMIT);
  }
  const d = new TextDecoder();
  const skipped = total > head.length + tail.length;
  return (d.decode(head) + (skipped ? "\n…\n" : "") + d.decode(tail)).trim();
}

/** What zstd -v said it unpacked ("/*stdin*\\ : 3010560 bytes"), or undefined. */
function unpackedBytes(stderr: string): number | undefined {
  const n = stderr.match(/^\/\*stdin\*\\\s*:\s*(\d+) bytes\s*$/m)?.[1];
  return n === undefined ? undefined : Number(n);
}

/**
 * What tar said went wrong: its last line that is not a sign-off (tar's, or zstd's banner and
 * size); zstd's own error, if it failed.
 */
function tarReason(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter((l) =>
    l &&
    !/Error is not recoverable|Child returned status|Exiting with failure status|^…$|^\*\*\* Zstandard CLI|^\/\*stdin\*\\\s*:\s*\d+ bytes$/
      .test(l)
  );
  return (lines.at(-1) ?? "").slice(0, 300) || "tar failed";
}

/** Run a tool as `owner` (postgres); its output, or the last line it printed when it failed. */
async function runAs(
  owner: Owner | undefined,
  cmd: string,
  args: string[],
): Promise<{ stdout: Uint8Array; failed?: string }> {
  const out = await outputTracked(
    command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
    }),
  );
  if (out.success) return { stdout: out.stdout };
  const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
  return { stdout: out.stdout, failed: why || `${cmd.split("/").pop()} exited ${out.code}` };
}

const KINDS: Record<string, string> = {
  l: "a symbolic link",
  f: "a hard link",
  p: "a FIFO",
  s: "a socket",
  b: "a device",
  c: "a device",
};

/**
 * What a base backup may not hold, found in what tar unpacked (as postgres, never following a
 * link): anything but regular files and directories (links of either kind, devices, FIFOs).
 * pg_basebackup writes pg_wal as a directory even when it is a link; tablespace links are
 * refused (one volume, no tablespaces). Undefined when there is none.
 */
export async function strayMember(
  dir: string,
  owner: Owner | undefined,
): Promise<string | undefined> {
  const out = await runAs(owner, "find", [
    dir,
    "(",
    "!",
    "-type",
    "f",
    "!",
    "-type",
    "d",
    "-o",
    "-type",
    "f",
    "-links",
    "+1",
    ")",
    "-printf",
    "%y %P\\n",
    "-quit",
  ]);
  if (out.failed) return `that could not be checked (${out.failed})`;
  const line = new TextDecoder().decode(out.stdout).split("\n")[0] ?? "";
  if (!line) return undefined;
  const kind = line.slice(0, 1);
  return `${JSON.stringify(line.slice(2))} is ${KINDS[kind] ?? `of type ${kind}`}`;
}

/** What fetchBackup did. */
export interface FetchResult {
  seconds: number;
  /** Ranges resumed after a stall or reset (or fetched again: wrong bytes). */
  resumed: number;
  /** Parts an interrupted attempt had kept, used after their SHA-256 matched; and their bytes. */
  reused: number;
  reusedBytes: number;
  /** Kept parts whose SHA-256 did not match (downloaded again). */
  discarded: number;
  /** False when there was no room to keep the parts (an interrupted restore starts over). */
  resumable: boolean;
}

export async function fetchBackup(
  ctx: RestoreSite,
  cfg: ArchiveConfig,
  chain: BackupManifest[],
  target: RestoreTarget,
  o: {
    progress?: (line: string) => void;
    timeline?: string;
    parallel?: number;
    /** Keep downloaded parts so an interrupted restore can continue (default true). */
    keepParts?: boolean;
    /** postgres's restore_command (default `beyond-pg restore-wal %f %p`). */
    restoreCommand?: string;
  } = {},
): Promise<FetchResult> {
  const t0 = performance.now();
  const { layout } = ctx;
  const data = ctx.trees.data;
  const m = chain.at(-1)!;
  const avail = await freeBytes(layout.dataRoot);
  // An incremental chain is unpacked whole, then combined into a copy: twice the space.
  const total = chain.reduce((n, b) => n + b.bytes, 0) + (chain.length > 1 ? m.bytes * 2 : 0);
  const need = Math.ceil(total * 1.05) + (64 << 20);
  // Keeping the downloaded parts (a resumable restore) takes the stored size on top; what an
  // earlier attempt kept is already taken from `avail`.
  const keptBytes = chain.reduce((n, b) => n + dirBytes(ctx, `${partsDir(ctx)}/${b.label}`), 0);
  const stored = chain.reduce((n, b) => n + b.stored_bytes, 0);
  const wantParts = o.keepParts !== false;
  const roomForParts = avail === undefined || avail + keptBytes >= need + stored;
  const resumable = wantParts && roomForParts;
  if (wantParts && !roomForParts) {
    log.warn(
      `restore: not enough space in ${layout.dataRoot} to keep the downloaded parts as well (${
        (stored / 2 ** 30).toFixed(2)
      } GiB more): if this restore is interrupted, it starts over`,
    );
  }
  if (avail !== undefined && avail + keptBytes < need) {
    throw new OperatorError(
      `not enough space in ${layout.dataRoot}: backup ${m.label} needs ${
        (need / 2 ** 30).toFixed(2)
      } GiB, ${(avail / 2 ** 30).toFixed(2)} GiB free; grow the volume`,
    );
  }
  for (const b of chain) {
    const missingKey = await keyProblem(cfg, b);
    if (missingKey) throw new OperatorError(missingKey, { exitCode: 2 });
  }
  const staging = `${layout.dataRoot}/.restore-staging`;
  // What an interrupted attempt unpacked goes; the parts it downloaded stay (for this chain).
  clearStaging(ctx, resumable ? chain.map((b) => b.label) : []);
  const r: FetchResult = {
    seconds: 0,
    resumed: 0,
    reused: 0,
    reusedBytes: 0,
    discarded: 0,
    resumable,
  };
  const extract = async (b: BackupManifest, dir: string) => {
    data.ensureDir(dir, 0o700);
    const one = await extractOne(ctx, cfg, b, dir, { ...o, keepParts: resumable });
    r.resumed += one.resumed;
    r.reused += one.reused;
    r.reusedBytes += one.reusedBytes;
    r.discarded += one.discarded;
  };
  if (chain.length === 1) {
    await extract(m, `${staging}/main`);
  } else {
    // PostgreSQL 17+: the full backup and each incremental, then pg_combinebackup into main.
    const dirs = chain.map((_, i) => `${staging}/chain-${i}`);
    for (const [i, b] of chain.entries()) await extract(b, dirs[i]!);
    const out = await runAs(ctx.runAs.switchTo, `${cfg.binDir}/pg_combinebackup`, [
      "-o",
      `${staging}/main`,
      ...dirs,
    ]);
    if (out.failed) {
      throw new OperatorError(
        `combining backup ${m.label} with the ${
          chain.length - 1
        } it builds on failed: ${out.failed}`,
      );
    }
    for (const d of dirs) data.remove(d);
  }

  // The data root's layout: WAL in <root>/wal, pg_wal a link to it (as initdb -X makes it).
  const main = `${staging}/main`;
  if (!data.exists(`${main}/PG_VERSION`)) {
    throw new OperatorError(`backup ${m.label} does not contain a data directory (no PG_VERSION)`);
  }
  data.ensureDir(`${main}/pg_wal`, 0o700); // pg_combinebackup may leave none: recovery fetches WAL
  data.rename(`${main}/pg_wal`, `${staging}/wal`);
  data.symlink(layout.walDir, `${main}/pg_wal`);
  data.ensureDir(`${main}/conf.d`, 0o700);
  data.writeAtomic(
    `${main}/conf.d/${RECOVERY_CONF}`,
    recoveryConf(target, o.restoreCommand ?? selfCommand("restore-wal", "%f", "%p"), o.timeline),
    0o600,
  );
  data.writeAtomic(`${main}/recovery.signal`, "", 0o600);
  for (const stale of ["postmaster.pid", "postmaster.opts", "standby.signal"]) {
    data.remove(`${main}/${stale}`);
  }
  // Commit: the WAL first, then main (its appearance is what a boot looks for).
  data.rename(`${staging}/wal`, layout.walDir);
  data.rename(main, layout.pgdata);
  data.syncDir(layout.dataRoot);
  data.remove(staging);
  return { ...r, seconds: (performance.now() - t0) / 1000 };
}

/** The bytes of the files directly in `dir` (0 when it does not exist). */
function dirBytes(ctx: RestoreSite, dir: string): number {
  let n = 0;
  for (const e of ctx.trees.data.list(dir)) {
    if (e.isFile) n += ctx.trees.data.stat(`${dir}/${e.name}`)?.size ?? 0;
  }
  return n;
}
