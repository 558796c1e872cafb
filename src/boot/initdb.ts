/**
 * EFFECT: first boot, atomically. The commit point is PGDATA/PG_VERSION appearing (a rename),
 * after everything else initdb made is already in place. A kill -9 at any step leaves either
 * no PG_VERSION and our "incomplete" marker (the next boot clears our leftovers and starts
 * over) or a complete cluster. We never clear a directory we did not mark as ours.
 *
 * The cluster comes from the image's seed (a prepared cluster given a fresh system identifier)
 * when one matches this server and manifest, else from initdb.
 *
 * The data root is postgres's (a superuser could have left anything in it): every file
 * operation here runs as postgres (`data`, a PgTree), and so do the tools.
 */
import type { Layout } from "../config/layout.ts";
import type { Secret } from "../settings/secret.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import type { Binaries } from "./binaries.ts";
import type { PgTree } from "../fs/tree.ts";
import { runInitdb } from "./initdb_cmd.ts";
import { run } from "../process/spawner.ts";
import { copySeed, type Seed } from "./seed.ts";
import type { RunAs } from "./users.ts";
import { sleep } from "../util/sleep.ts";

export const INCOMPLETE_MARKER = ".beyond-initdb-incomplete";
const STAGING = ".beyond-initdb";
const PWFILE = ".beyond-initdb-pw";
const IGNORED = new Set(["lost+found", INCOMPLETE_MARKER]);

export type DataState = "existing" | "empty" | "incomplete";

/** Classify a data directory; throws when it holds something that is not ours. */
export function dataState(data: PgTree, layout: Layout): DataState {
  if (data.exists(`${layout.pgdata}/PG_VERSION`)) return "existing";
  const check = (dir: string): boolean => {
    if (!data.exists(dir)) return false;
    const entries = data.list(dir).map((e) => e.name).filter((n) => !IGNORED.has(n));
    const marked = data.exists(`${dir}/${INCOMPLETE_MARKER}`);
    if (entries.length > 0 && !marked) {
      throw new OperatorError(
        `Cannot start: ${dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION in ${layout.pgdata}); move its contents away or point BEYOND_PG_DATA_ROOT at an empty volume`,
        { exitCode: 2 },
      );
    }
    return marked;
  };
  const a = check(layout.pgdata);
  const b = check(layout.walDir);
  return a || b ? "incomplete" : "empty";
}

/**
 * Remove everything in `dir` but `keep`. An initdb orphaned by a killed supervisor may still be
 * writing into its staging directory for a moment, so "directory not empty" is retried.
 */
async function clearExcept(data: PgTree, dir: string, keep: Set<string>): Promise<void> {
  for (let attempt = 0;; attempt++) {
    try {
      for (const entry of data.list(dir)) {
        if (!keep.has(entry.name)) data.remove(`${dir}/${entry.name}`);
      }
      return;
    } catch (error) {
      const busy = error instanceof Error && /not empty|os error 39/i.test(error.message);
      if (!busy || attempt >= 100) throw error;
      await sleep(100);
    }
  }
}

function mark(data: PgTree, dir: string): void {
  data.writeAtomic(`${dir}/${INCOMPLETE_MARKER}`, "beyond-pg first boot in progress\n", 0o600);
}

function moveInto(data: PgTree, from: string, to: string, skip: Set<string> = new Set()): void {
  for (const entry of data.list(from)) {
    if (skip.has(entry.name)) continue;
    try {
      data.rename(`${from}/${entry.name}`, `${to}/${entry.name}`);
    } catch (error) {
      // Different filesystems (WAL on its own device): copy, then remove.
      if (!(error instanceof Error) || !/cross-device|EXDEV/i.test(error.message)) throw error;
      data.copyFile(`${from}/${entry.name}`, `${to}/${entry.name}`);
      data.remove(`${from}/${entry.name}`, false);
    }
  }
}

export interface InitdbOptions {
  /** The data root's tree (postgres's). */
  data: PgTree;
  layout: Layout;
  bins: Binaries;
  runAs: RunAs;
  password: Secret;
  seed: Seed | undefined;
  /**
   * A replica's first boot: fill the (not yet existing) staging directory from the primary
   * instead (pg_basebackup); it is committed the same way, so a kill never leaves a
   * half-cloned PGDATA that boots.
   */
  clone?: (staging: string) => Promise<void>;
}

/** Create a cluster in staging and commit it into PGDATA; returns how it was made. */
export async function firstBoot(
  { data, layout, bins, runAs, password, seed, clone }: InitdbOptions,
): Promise<"seed" | "initdb" | "clone" | "existing"> {
  data.ensureDir(layout.pgdata, 0o700);
  data.ensureDir(layout.walDir, 0o700);
  const state = dataState(data, layout);
  if (state === "existing") return "existing";
  if (state === "incomplete") {
    log.warn(`completing an interrupted first boot in ${layout.dataRoot}`);
  }
  mark(data, layout.pgdata);
  mark(data, layout.walDir);
  await clearExcept(data, layout.pgdata, new Set(IGNORED));
  await clearExcept(data, layout.walDir, new Set([INCOMPLETE_MARKER]));

  // A unique name: a leftover initdb from a killed boot can only ever write into its own.
  const staging = `${layout.pgdata}/${STAGING}-${crypto.randomUUID().slice(0, 8)}`;
  let how: "seed" | "initdb" | "clone" = "initdb";
  if (clone) {
    await clone(staging);
    how = "clone";
  } else if (seed) {
    try {
      data.ensureDir(staging, 0o700);
      await copySeed(seed, staging, { bins, runAs, data });
      how = "seed";
    } catch (error) {
      log.warn(`seed ${seed.dir} not used (${errorMessage(error)}); running initdb instead`);
      await clearExcept(data, layout.pgdata, new Set(IGNORED));
    }
  }
  if (how === "initdb") {
    await runInitdb(staging, {
      bins,
      runAs,
      password,
      pwfile: `${layout.pgdata}/${PWFILE}`,
      tree: data,
    });
  }

  // pg_wal → <root>/wal (the Tier 2 seam: one symlink swap relocates WAL).
  moveInto(data, `${staging}/pg_wal`, layout.walDir);
  data.remove(`${staging}/pg_wal`);
  data.symlink(layout.walDir, `${staging}/pg_wal`);
  data.syncDir(layout.walDir);

  moveInto(data, staging, layout.pgdata, new Set(["PG_VERSION"]));
  // Everything must be on disk before the commit: the seed is copied with cp(1), which does
  // not fsync, and a power cut after the rename would leave a "complete" cluster of empty
  // files (ext4 allocates data blocks later than it journals the rename). initdb syncs its
  // own files; a syncfs of the volume covers both paths at once.
  await syncFilesystem(layout.pgdata);
  data.syncDir(layout.pgdata);
  data.rename(`${staging}/PG_VERSION`, `${layout.pgdata}/PG_VERSION`); // commit
  data.syncDir(layout.pgdata);
  data.remove(staging, false);
  clearMarkers(data, layout);
  return how;
}

/** syncfs(2) of the filesystem holding `path` (sync -f), falling back to sync(2). */
async function syncFilesystem(path: string): Promise<void> {
  const r = await run("sync", ["-f", path], { check: false });
  if (r.code !== 0) await run("sync", []);
}

/** After the commit (or on a boot that finds a complete cluster): drop our markers. */
export function clearMarkers(data: PgTree, layout: Layout): void {
  const removed = [
    data.remove(`${layout.pgdata}/${INCOMPLETE_MARKER}`, false),
    data.remove(`${layout.walDir}/${INCOMPLETE_MARKER}`, false),
  ];
  if (removed.some(Boolean)) data.syncDir(layout.pgdata);
}
