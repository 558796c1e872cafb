/**
 * EFFECT: a base backup streamed to S3 with no local copy: pg_basebackup (tar, the WAL it needs
 * fetched into the tar) → zstd → multipart upload, parts uploaded in parallel as they fill.
 * The manifest (LSNs, times, sizes, SHA-256) is stored last: a backup without one is an
 * interrupted upload and is never restored from.
 */
import { S3Error } from "../s3/client.ts";
import { pump } from "../process/pump.ts";
import { command } from "../process/command.ts";
import { spawnTracked } from "../process/registry.ts";
import { OperatorError } from "../util/errors.ts";
import { ArchiveError, checkOwner, clientFor, layoutFor } from "../wal/archive.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import { parseLsn, segmentName, segmentOfLsn } from "../wal/names.ts";
import { type BackupManifest, newLabel, validLabel } from "./manifest.ts";

export interface BackupOptions {
  label?: string;
  /** Print progress (a TTY). */
  progress?: (line: string) => void;
  /** Parts uploaded at once. */
  parallel?: number;
  partBytes?: number;
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
  // Loaded here, not at the top: a static node: import would start Node compatibility in
  // every process of the bundle (archive runs per WAL segment).
  const { createHash } = await import("node:crypto");
  const client = clientFor(cfg);
  const layout = layoutFor(cfg);
  const label = o.label ?? newLabel(new Date());
  if (!validLabel(label)) {
    throw new OperatorError(
      `backup label ${JSON.stringify(label)} is not usable; use letters, digits, . _ - (up to 64)`,
    );
  }
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
  const feed = pump(pgbb.stdout, zstd.stdin, (chunk) => (bytes += chunk.length));

  const partBytes = o.partBytes ?? 16 << 20;
  const parallel = Math.max(1, o.parallel ?? cfg.parallel);
  const whole = createHash("sha256");
  const etags: string[] = [];
  const inflight = new Set<Promise<void>>();
  let uploadId: string | undefined;
  let stored = 0;
  let uploadError: unknown;
  const upload = async (n: number, body: Uint8Array) => {
    const hash = createHash("sha256").update(body).digest("hex");
    etags[n - 1] = await client.uploadPart(key, uploadId!, n, body, hash);
    stored += body.length;
  };
  try {
    uploadId = await client.createMultipart(key, { "beyond-codec": "zstd", "beyond-label": label });
    let buf = new Uint8Array(partBytes);
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
      buf = new Uint8Array(partBytes);
      fill = 0;
      while (inflight.size >= parallel) await Promise.race(inflight);
      if (uploadError) throw uploadError;
      o.progress?.(`uploaded ${(stored / 2 ** 20).toFixed(0)} MiB (${n} parts)`);
    };
    for await (const chunk of zstd.stdout) {
      let off = 0;
      while (off < chunk.length) {
        const n = Math.min(chunk.length - off, partBytes - fill);
        buf.set(chunk.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === partBytes) await flush();
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
    await Promise.allSettled([pgbb.status, zstd.status, feed, stderrDone, ...inflight]);
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
