/**
 * EFFECT: a base backup streamed to S3 with no local copy: pg_basebackup (tar, the WAL it needs
 * fetched into the tar) → zstd → multipart upload, parts uploaded in parallel as they fill.
 * The manifest (LSNs, times, sizes, SHA-256) is stored last: a backup without one is an
 * interrupted upload and is never restored from.
 */
import { S3Error } from "../s3/client.ts";
import { pump } from "../process/pump.ts";
import { command } from "../process/command.ts";
import { outputTracked, spawnTracked } from "../process/registry.ts";
import { partSize, planParts } from "./parts.ts";
import { archiveKeys } from "../wal/keys.ts";
import { ALGORITHM, loadCrypto, seal, sealStream } from "../wal/envelope.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import {
  ArchiveError,
  checkOwner,
  clientFor,
  layoutFor,
  lineageOf,
  readOwner,
} from "../wal/archive.ts";
import type { RootTree } from "../fs/tree.ts";
import { type BackupDir, baseFileName, lockBackupDir } from "./backup_dir.ts";
import { runDirFrom } from "../settings/defaults.ts";
import { TarMember } from "./tar_member.ts";
import { openWalObject } from "../wal/keys.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import { parseLsn, segmentName, segmentOfLsn } from "../wal/names.ts";
import { type BackupManifest, chooseParent, newLabel, validLabel } from "./manifest.ts";

export interface BackupOptions {
  label?: string;
  /** Print progress (a TTY). */
  progress?: (line: string) => void;
  /** Parts uploaded at once (at most; memory bounds it too: parts.ts). */
  parallel?: number;
  /** The smallest part (default 16 MiB; larger for a large cluster: parts.ts). */
  partBytes?: number;
  /** The size to plan parts for (default: the databases' size, asked of postgres). */
  expectedBytes?: number;
  /** PostgreSQL 17+: only what changed since the newest backup (pg_basebackup --incremental). */
  incremental?: boolean;
}

/** PostgreSQL's own manifest, stored beside a backup (17+): the base of a later incremental. */
export const PG_MANIFEST = "backup_manifest";
/** The largest PostgreSQL manifest we keep (~200 bytes a file: a million files). */
const PG_MANIFEST_MAX = 512 << 20;

/**
 * For `backup --incremental`: the parent backup, and its PostgreSQL manifest where
 * pg_basebackup (run as postgres) reads it: written by root in the backup's root-owned directory
 * of the run dir (`<run>/backup/incremental-base.<label>.manifest`: backup_dir.ts), the file
 * root's with postgres's group (0640), so nothing is written where postgres can write (a pipe
 * will not do: postgres cannot reopen root's pipe). `cleanup` removes it. Or why there is none
 * (PostgreSQL before 17, no backup to build on): the backup is then full.
 */
async function incrementalBase(
  client: ReturnType<typeof clientFor>,
  cfg: ArchiveConfig,
  at: { dir: RootTree; label: string },
): Promise<{ parent: BackupManifest; file: string; cleanup: () => void } | string> {
  if (cfg.major < 17) {
    return `incremental backups need PostgreSQL 17 or later (this is PostgreSQL ${cfg.major})`;
  }
  const owner = await readOwner(client, cfg.target);
  const lineage = await lineageOf(client, cfg, owner?.timeline ?? 1);
  const parent = chooseParent(await listBackups(cfg), lineage);
  if (typeof parent === "string") return parent;
  const obj = await client.get(
    layoutFor(cfg).backup(parent.label, parent.pg_manifest!),
    undefined,
    {
      maxBytes: PG_MANIFEST_MAX,
    },
  );
  if (!obj) return `backup ${parent.label} has no ${parent.pg_manifest} to be incremental to`;
  const body = (await openWalObject(cfg, `backup ${parent.label}'s manifest`, obj)).body;
  const dir = at.dir;
  const file = `${dir.base}/${baseFileName(at.label)}`;
  dir.writeAtomic(file, body, 0o640);
  dir.give(file, cfg.runAs ? { uid: 0, gid: cfg.runAs.gid } : undefined, 0o640);
  return { parent, file, cleanup: () => dir.remove(file, false) };
}

/** The size of every database (what the tar holds, less WAL and overhead); 0 if unknown. */
async function databasesSize(cfg: ArchiveConfig): Promise<number> {
  const out = await outputTracked(
    command(`${cfg.binDir}/psql`, {
      args: [
        "-h",
        cfg.socketDir,
        "-p",
        String(cfg.port),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-XAtqc",
        "select sum(pg_database_size(oid)) from pg_database",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { PGAPPNAME: "beyond-pg backup", PGCONNECT_TIMEOUT: "30" },
      ...(cfg.runAs ? { uid: cfg.runAs.uid, gid: cfg.runAs.gid } : {}),
    }),
  ).catch(() => undefined);
  const n = Number(out?.success ? decoder.decode(out.stdout).trim() : NaN);
  return Number.isFinite(n) ? n : 0;
}

const decoder = new TextDecoder();

export async function readManifest(
  client: ReturnType<typeof clientFor>,
  key: string,
): Promise<BackupManifest | undefined> {
  const obj = await client.get(key);
  if (!obj) return undefined;
  return JSON.parse(decoder.decode(obj.body)) as BackupManifest;
}

/** Every complete backup of the cluster, in no particular order. */
export async function listBackups(cfg: ArchiveConfig): Promise<BackupManifest[]> {
  const client = clientFor(cfg);
  const layout = layoutFor(cfg);
  const objects = await client.list(layout.backupsPrefix);
  const manifests = objects.filter((o) => o.key.endsWith("/manifest.json"));
  const out: BackupManifest[] = [];
  for (const m of manifests) {
    const doc = await readManifest(client, m.key);
    if (doc?.format === 1) out.push(doc);
  }
  return out;
}

function s3Fail(error: unknown): never {
  if (error instanceof S3Error || error instanceof ArchiveError) {
    throw new OperatorError(error.message, { cause: error });
  }
  throw error;
}

export async function runBackup(
  cfg: ArchiveConfig,
  o: BackupOptions = {},
): Promise<BackupManifest> {
  const label = o.label ?? newLabel(new Date());
  if (!validLabel(label)) {
    throw new OperatorError(
      `backup label ${JSON.stringify(label)} is not usable; use letters, digits, . _ - (up to 64)`,
    );
  }
  // One backup at a time (backup_dir.ts): refused here, before anything is stored.
  const held = await lockBackupDir(runDirFrom(), label);
  try {
    return await backupLocked(cfg, o, label, held);
  } finally {
    held.release();
  }
}

async function backupLocked(
  cfg: ArchiveConfig,
  o: BackupOptions,
  label: string,
  held: BackupDir,
): Promise<BackupManifest> {
  // Loaded here, not at the top: a static node: import would start Node compatibility in
  // every process of the bundle (archive runs per WAL segment).
  const { createHash } = await import("node:crypto");
  const client = clientFor(cfg);
  const layout = layoutFor(cfg);
  const object = "base.tar.zst";
  const key = layout.backup(label, object);
  try {
    await checkOwner(client, cfg);
    if (await client.head(layout.backup(label, "manifest.json"))) {
      throw new OperatorError(`a backup labelled ${label} already exists; choose another label`);
    }
  } catch (error) {
    s3Fail(error);
  }

  const expected = o.expectedBytes ?? await databasesSize(cfg);
  const plan = planParts(expected, {
    parallel: o.parallel ?? cfg.parallel,
    ...(o.partBytes ? { minPartBytes: o.partBytes } : {}),
  });
  if (typeof plan === "string") throw new OperatorError(`cannot back up: ${plan}`);

  let base: Exclude<Awaited<ReturnType<typeof incrementalBase>>, string> | undefined;
  let note: string | undefined;
  try {
    const b = o.incremental
      ? await incrementalBase(client, cfg, { dir: held.dir, label })
      : undefined;
    if (typeof b === "string") {
      // Never a failed backup for want of a base: a full one, said once.
      note = `${b}: a full backup is taken instead`;
      log.warn(`backup: ${note}`);
    } else base = b;
  } catch (error) {
    s3Fail(error);
  }
  // PostgreSQL's own manifest, read from the tar as it streams (17+: a later incremental's base).
  const pgManifest = cfg.major >= 17 ? new TarMember(PG_MANIFEST, PG_MANIFEST_MAX) : undefined;

  const started = new Date();
  const t0 = performance.now();
  const pgbb = spawnTracked(
    command(`${cfg.binDir}/pg_basebackup`, {
      args: [
        "-h",
        cfg.socketDir,
        "-p",
        String(cfg.port),
        "-U",
        "postgres",
        "-D",
        "-",
        "-F",
        "tar",
        "-X",
        "fetch",
        "-c",
        "fast",
        "-v",
        "-l",
        `beyond-pg ${label}`,
        ...(base ? [`--incremental=${base.file}`] : []),
        ...(o.progress ? ["-P"] : []),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { PGAPPNAME: "beyond-pg backup", PGCONNECT_TIMEOUT: "30" },
      ...(cfg.runAs ? { uid: cfg.runAs.uid, gid: cfg.runAs.gid } : {}),
    }),
  );
  const zstd = spawnTracked(
    command("zstd", {
      args: ["-1", "-q", "-c"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }),
  );

  // pg_basebackup's stderr: LSNs, errors, and (on a TTY) progress.
  let startLsn = "";
  let stopLsn = "";
  let timeline = 0;
  let stopTime: Date | undefined;
  const errors: string[] = [];
  const stderrDone = (async () => {
    let rest = "";
    for await (const chunk of pgbb.stderr.pipeThrough(new TextDecoderStream())) {
      const parts = (rest + chunk).split(/[\r\n]/);
      rest = parts.pop() ?? "";
      for (const line of parts) {
        if (!line.trim()) continue;
        let m = line.match(/write-ahead log start point: ([0-9A-F]+\/[0-9A-F]+) on timeline (\d+)/);
        if (m) [startLsn, timeline] = [m[1]!, Number(m[2])];
        m = line.match(/write-ahead log end point: ([0-9A-F]+\/[0-9A-F]+)/);
        if (m) [stopLsn, stopTime] = [m[1]!, new Date()];
        if (/kB \(\d+%\)/.test(line)) o.progress?.(line.replace(/^\s+/, ""));
        else if (/error|FATAL|could not/i.test(line)) {
          errors.push(line.replace(/^pg_basebackup: /, ""));
        }
      }
    }
  })();

  let bytes = 0;
  const feed = pump(pgbb.stdout, zstd.stdin, (chunk) => {
    bytes += chunk.length;
    pgManifest?.push(chunk);
  });

  const parallel = plan.parallel;
  const whole = createHash("sha256");
  const etags: string[] = [];
  const partHashes: string[] = [];
  const inflight = new Set<Promise<void>>();
  let uploadId: string | undefined;
  let encryption: BackupManifest["encryption"];
  const keys = await archiveKeys(cfg);
  let stored = 0;
  let uploadError: unknown;
  const upload = async (n: number, body: Uint8Array) => {
    const hash = createHash("sha256").update(body).digest("hex");
    partHashes[n - 1] = hash;
    etags[n - 1] = await client.uploadPart(key, uploadId!, n, body, hash);
    stored += body.length;
  };
  try {
    uploadId = await client.createMultipart(key, { "beyond-codec": "zstd", "beyond-label": label });
    let size = partSize(1, plan.partBytes)!;
    let buf = new Uint8Array(size);
    let fill = 0;
    let part = 0;
    const flush = async () => {
      const body = buf.subarray(0, fill);
      whole.update(body);
      const n = ++part;
      const p = upload(n, body).catch((e) => {
        uploadError ??= e;
      }).finally(() => inflight.delete(p));
      inflight.add(p);
      // 0 past part 10,000: only an error if more data comes.
      size = partSize(n + 1, plan.partBytes) ?? 0;
      buf = new Uint8Array(size);
      fill = 0;
      while (inflight.size >= parallel) await Promise.race(inflight);
      if (uploadError) throw uploadError;
      o.progress?.(`uploaded ${(stored / 2 ** 20).toFixed(0)} MiB (${n} parts)`);
    };
    // Client-side encryption: the compressed stream is sealed before it is cut into parts.
    const out = keys.length
      ? zstd.stdout.pipeThrough(sealStream(await loadCrypto(), keys[0]!))
      : zstd.stdout;
    if (keys.length) encryption = { algorithm: ALGORITHM, key_id: keys[0]!.id };
    for await (const chunk of out) {
      let off = 0;
      while (off < chunk.length) {
        if (size === 0) {
          throw new OperatorError(
            `the backup outgrew S3's 10,000 parts (${
              (stored / 2 ** 30).toFixed(1)
            } GiB stored, far more than the ${
              (expected / 2 ** 30).toFixed(1)
            } GiB planned for); take it again`,
          );
        }
        const n = Math.min(chunk.length - off, size - fill);
        buf.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === size) await flush();
      }
    }
    if (fill > 0 || part === 0) await flush();
    await Promise.all(inflight);
    if (uploadError) throw uploadError;
    await feed;
    await stderrDone;
    const [pgStatus, zStatus] = await Promise.all([pgbb.status, zstd.status]);
    if (!pgStatus.success) {
      throw new OperatorError(
        `pg_basebackup failed (exit ${pgStatus.code}): ${errors.at(-1) ?? "no message"}`,
      );
    }
    if (!zStatus.success) throw new OperatorError(`zstd failed (exit ${zStatus.code})`);
    if (!startLsn || !stopLsn) {
      throw new OperatorError("pg_basebackup did not report the backup's WAL range");
    }
    await client.completeMultipart(key, uploadId, etags);
    uploadId = undefined;
    base?.cleanup();
    if (pgManifest?.found) {
      const c = await loadCrypto();
      const body = keys.length ? seal(c, keys[0]!, pgManifest.found) : pgManifest.found;
      await client.put(layout.backup(label, PG_MANIFEST), body, {
        ...(keys.length ? { metadata: { "beyond-key-id": keys[0]!.id } } : {}),
      });
    }
    const head = await client.head(key);
    if (!head || head.size !== stored) {
      throw new OperatorError(
        `the stored backup is ${
          head?.size ?? 0
        } bytes, expected ${stored}; not writing its manifest`,
      );
    }
    const manifest: BackupManifest = {
      format: 1,
      label,
      system_identifier: cfg.sysid,
      major: cfg.major,
      pg_version: cfg.pgVersion,
      timeline,
      start_lsn: startLsn,
      stop_lsn: stopLsn,
      start_wal: segmentName({ timeline, number: segmentOfLsn(parseLsn(startLsn)!) }),
      start_time: started.toISOString(),
      stop_time: (stopTime ?? new Date()).toISOString(),
      bytes,
      stored_bytes: stored,
      sha256: whole.digest("hex"),
      codec: "zstd",
      object,
      parts: etags.length,
      part_size: plan.partBytes,
      part_sha256: partHashes,
      ...(cfg.major >= 17 ? { kind: base ? "incremental" as const : "full" as const } : {}),
      ...(base ? { parent: base.parent.label } : {}),
      ...(pgManifest?.found ? { pg_manifest: PG_MANIFEST } : {}),
      ...(encryption ? { encryption } : {}),
      ...(note ? { note } : {}),
      duration_ms: Math.round(performance.now() - t0),
    };
    await client.put(
      layout.backup(label, "manifest.json"),
      new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n"),
      { contentType: "application/json" },
    );
    return manifest;
  } catch (error) {
    for (const p of [pgbb, zstd]) {
      try {
        p.kill("SIGTERM");
      } catch { /* exited */ }
    }
    await Promise.allSettled([
      pgbb.status,
      zstd.status,
      feed,
      stderrDone,
      ...inflight,
    ]);
    base?.cleanup();
    if (uploadId) await client.abortMultipart(key, uploadId).catch(() => {});
    if (error instanceof OperatorError) throw error;
    if (errors.length) {
      throw new OperatorError(`pg_basebackup failed: ${errors.at(-1)}`, { cause: error });
    }
    s3Fail(error);
  }
}

export function describeBackup(m: BackupManifest): string {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${m.label}  ${m.stop_time}  ${m.start_lsn}..${m.stop_lsn} (TL${m.timeline})  ${
    mb(m.bytes)
  } → ${mb(m.stored_bytes)}  ${(m.duration_ms / 1000).toFixed(1)} s`;
}
