/**
 * EFFECT: `verify` — prove, before anyone needs it, that each base backup (or one) can be
 * restored: its stored object is the one its manifest names (size and SHA-256 of every byte),
 * and the archived WAL is continuous from its start to the newest segment of its lineage —
 * the same continuity check `restore` runs (chain.ts checkChain, one implementation), then each
 * of those WAL files read back: decompressed (the codec's own checksum), its size against its
 * metadata, its first page against its name and this cluster (validate.ts). Nothing is written.
 */
import { chainFiles, checkChain } from "./chain.ts";
import { listBackups } from "./basebackup.ts";
import { type BackupManifest, onLineage, sortBackups } from "./manifest.ts";
import { archivedNames } from "./restore_plan.ts";
import { clientFor, layoutFor, lineageOf, readOwner } from "../wal/archive.ts";
import type { ArchiveConfig } from "../wal/config.ts";
import type { Lineage } from "../wal/lineage.ts";
import { formatLsn, parseLsn } from "../wal/names.ts";
import { decodeWal, getWalObject } from "../wal/restore.ts";
import { walFileProblem } from "../wal/validate.ts";
import { errorMessage } from "../util/errors.ts";
import { keyProblem } from "../wal/keys.ts";
import type { S3Client } from "../s3/client.ts";
import type { RestoreTestResult } from "./trial_restore.ts";

export interface BackupVerdict {
  label: string;
  timeline: number;
  ok: boolean;
  /** The first problem (one line), when not ok. */
  problem?: string;
  /** The stored object: bytes read and their SHA-256 matched the manifest. */
  object: { ok: boolean; bytes: number };
  /** The WAL from the backup's start: segments, and the last one recovery reaches. */
  wal: { ok: boolean; segments: number; last: string; end: string };
}

export interface VerifyReport {
  ok: boolean;
  target: string;
  verifiedAt: string;
  backups: BackupVerdict[];
  /** WAL files read back (each once, however many backups need it). */
  walFilesChecked: number;
  /** The first problem of all, one line. */
  problem?: string;
  seconds: number;
  /** `verify --restore-test` (run only when the checks above pass): trial_restore.ts. */
  restoreTest?: RestoreTestResult;
}

export interface VerifyOptions {
  /** Only this backup. */
  backup?: string;
  /** Presence only: skip reading WAL files back (the backup objects are still hashed). */
  quick?: boolean;
  /** WAL files read at once. */
  parallel?: number;
  progress?: (line: string) => void;
}

/** Read the whole object and hash it: its size and SHA-256 against the manifest. */
export async function checkBackupObject(
  client: S3Client,
  cfg: ArchiveConfig,
  m: BackupManifest,
): Promise<{ bytes: number; problem?: string }> {
  const { createHash } = await import("node:crypto"); // not at the top: see basebackup.ts
  const key = layoutFor(cfg).backup(m.label, m.object);
  const stream = await client.getStream(key);
  if (!stream) return { bytes: 0, problem: `backup ${m.label} has a manifest but no ${m.object}` };
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  const sha = hash.digest("hex");
  if (bytes !== m.stored_bytes || sha !== m.sha256) {
    return {
      bytes,
      problem: `backup ${m.label} is corrupt: ${m.object} is ${bytes} bytes with sha256 ${
        sha.slice(0, 16)
      }…, its manifest says ${m.stored_bytes} bytes, ${m.sha256.slice(0, 16)}…`,
    };
  }
  return { bytes };
}

/** Run `fn` over `items`, `parallel` at a time; the first rejection stops it. */
async function eachLimited<T>(items: T[], parallel: number, fn: (t: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

export async function verifyArchive(
  cfg: ArchiveConfig,
  o: VerifyOptions = {},
): Promise<VerifyReport> {
  const t0 = performance.now();
  const client = clientFor(cfg);
  const [owner, archived, all] = await Promise.all([
    readOwner(client, cfg.target),
    archivedNames(cfg),
    listBackups(cfg),
  ]);
  const backups = sortBackups(all).filter((b) => !o.backup || b.label === o.backup);
  const report: VerifyReport = {
    ok: true,
    target: cfg.target,
    verifiedAt: new Date().toISOString(),
    backups: [],
    walFilesChecked: 0,
    seconds: 0,
  };
  const fail = (problem: string) => {
    report.ok = false;
    report.problem ??= problem;
  };
  if (o.backup && !backups.length) {
    fail(`there is no backup labelled ${o.backup}; see \`beyond-pg backups list\``);
  } else if (!backups.length) {
    fail("there are no base backups in the archive; take one with `beyond-pg backup`");
  }
  const ownerLineage = await lineageOf(client, cfg, owner?.timeline ?? 1);
  const lineages = new Map<number, Lineage>();
  /** WAL file → its problem ("" when fine), each read once. */
  const walChecked = new Map<string, Promise<string>>();
  const checkWal = (name: string): Promise<string> => {
    let p = walChecked.get(name);
    if (!p) {
      p = (async () => {
        try {
          const obj = await getWalObject(client, cfg, name);
          if (!obj) return `${name} vanished from the archive while verifying`;
          const data = await decodeWal(name, obj);
          const problem = walFileProblem(name, data, { major: cfg.major, sysid: cfg.sysid });
          return problem ? `${name} in the archive is not usable: ${problem}` : "";
        } catch (error) {
          return errorMessage(error);
        }
      })();
      walChecked.set(name, p);
    }
    return p;
  };
  for (const b of backups) {
    o.progress?.(`verifying backup ${b.label}`);
    const verdict: BackupVerdict = {
      label: b.label,
      timeline: b.timeline,
      ok: true,
      object: { ok: true, bytes: 0 },
      wal: { ok: true, segments: 0, last: "", end: "" },
    };
    const problem = (p: string) => {
      verdict.ok = false;
      verdict.problem ??= p;
      fail(p);
    };
    const noKey = await keyProblem(cfg, b);
    if (noKey) problem(noKey);
    const object = await checkBackupObject(client, cfg, b);
    verdict.object.bytes = object.bytes;
    if (object.problem) {
      verdict.object.ok = false;
      problem(object.problem);
    }
    // The lineage this backup's recovery follows: the primary's, or its own branch's.
    let lineage = ownerLineage;
    if (!onLineage(b, ownerLineage)) {
      if (!lineages.has(b.timeline)) {
        lineages.set(b.timeline, await lineageOf(client, cfg, b.timeline));
      }
      lineage = lineages.get(b.timeline)!;
    }
    const input = {
      archived,
      lineage,
      start: { lsn: parseLsn(b.start_lsn) ?? 0n, timeline: b.timeline },
    };
    const chain = checkChain(input);
    if (!chain.ok) {
      verdict.wal.ok = false;
      problem(`backup ${b.label}: ${chain.problem}`);
    } else {
      verdict.wal = {
        ok: true,
        segments: chain.segments,
        last: chain.last,
        end: formatLsn(chain.end),
      };
      const stop = parseLsn(b.stop_lsn) ?? 0n;
      if (chain.end <= stop) {
        verdict.wal.ok = false;
        problem(
          `backup ${b.label}: the archived WAL ends at ${
            formatLsn(chain.end)
          }, before the backup is consistent (${b.stop_lsn}); it cannot be restored until that WAL is archived`,
        );
      } else if (!o.quick) {
        const files = chainFiles(input, chain.last);
        const problems: string[] = [];
        await eachLimited(files, o.parallel ?? Math.max(2, cfg.parallel), async (name) => {
          const p = await checkWal(name);
          if (p) problems.push(p);
        });
        if (problems.length) {
          verdict.wal.ok = false;
          // The earliest file with a problem is the one recovery would stop at.
          problem(`backup ${b.label}: ${problems.sort()[0]}`);
        }
      }
    }
    report.backups.push(verdict);
  }
  report.walFilesChecked = walChecked.size;
  report.seconds = (performance.now() - t0) / 1000;
  client.close();
  return report;
}

/** One line per backup, for people. */
export function describeVerdict(v: BackupVerdict): string {
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
  return v.ok
    ? `ok      ${v.label} (TL${v.timeline}): object ${
      mb(v.object.bytes)
    } sha256 ok; WAL continuous to ${v.wal.last} (${v.wal.segments} segments, up to ${v.wal.end})`
    : `FAILED  ${v.label} (TL${v.timeline}): ${v.problem}`;
}
