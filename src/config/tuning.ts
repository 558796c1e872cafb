/**
 * PURE: the spec's tuning formulas, exactly (integer division, MB units). Regenerated every
 * boot so a resized VM picks up new values. See the design document, "Configuration".
 */
import type { ConfEntry } from "./conf_file.ts";

export interface TuningInput {
  ramMb: number;
  vcpus: number;
  /** PgBouncer's server pool (default_pool_size). */
  poolSize: number;
}

export interface Tuning {
  sharedBuffersMb: number;
  effectiveCacheSizeMb: number;
  maintenanceWorkMemMb: number;
  workMemMb: number;
  maxConnections: number;
  walBuffersMb: number;
  maxWorkerProcesses: number;
  maxParallelWorkers: number;
  maxParallelWorkersPerGather: number;
  maxParallelMaintenanceWorkers: number;
  /** PostgreSQL 18+: processes doing asynchronous I/O (io_method = worker). */
  ioWorkers: number;
}

const div = (a: number, b: number) => Math.floor(a / b);

/** clamp(x, lo, hi): the floor wins when hi < lo (small boxes keep 100 connections). */
export function clamp(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(x, hi));
}

export function computeTuning({ ramMb, vcpus, poolSize }: TuningInput): Tuning {
  const sharedBuffersMb = Math.max(128, div(ramMb, 4));
  return {
    sharedBuffersMb,
    effectiveCacheSizeMb: div(ramMb * 3, 4),
    maintenanceWorkMemMb: Math.min(div(ramMb, 20), 2048),
    workMemMb: Math.max(32, div(div(ramMb, 2), poolSize * 3)),
    maxConnections: clamp(poolSize + vcpus * 2 + 10, 100, div(ramMb, 50)),
    walBuffersMb: clamp(div(sharedBuffersMb, 32), 1, 16),
    maxWorkerProcesses: Math.max(8, vcpus + 4),
    maxParallelWorkers: Math.max(1, vcpus),
    maxParallelWorkersPerGather: clamp(div(vcpus, 2), 1, 4),
    maxParallelMaintenanceWorkers: clamp(div(vcpus, 2), 1, 4),
    ioWorkers: clamp(vcpus, 3, 8),
  };
}

export function tuningEntries(t: Tuning): ConfEntry[] {
  return [
    { name: "shared_buffers", value: `${t.sharedBuffersMb}MB`, why: "max(128, ram/4)" },
    { name: "effective_cache_size", value: `${t.effectiveCacheSizeMb}MB`, why: "ram*3/4" },
    {
      name: "maintenance_work_mem",
      value: `${t.maintenanceWorkMemMb}MB`,
      why: "min(ram/20, 2048)",
    },
    { name: "work_mem", value: `${t.workMemMb}MB`, why: "max(32, ram/2/(pool*3))" },
    {
      name: "max_connections",
      value: t.maxConnections,
      why: "clamp(pool+vcpus*2+10, 100, ram/50)",
    },
    { name: "wal_buffers", value: `${t.walBuffersMb}MB`, why: "clamp(shared_buffers/32, 1, 16)" },
    { name: "max_worker_processes", value: t.maxWorkerProcesses, why: "max(8, vcpus+4)" },
    { name: "max_parallel_workers", value: t.maxParallelWorkers, why: "max(1, vcpus)" },
    {
      name: "max_parallel_workers_per_gather",
      value: t.maxParallelWorkersPerGather,
      why: "clamp(vcpus/2, 1, 4)",
    },
    {
      name: "max_parallel_maintenance_workers",
      value: t.maxParallelMaintenanceWorkers,
      why: "clamp(vcpus/2, 1, 4)",
    },
    { name: "io_workers", value: t.ioWorkers, why: "clamp(vcpus, 3, 8)", since: 18 },
  ];
}

/** Local WAL bounds, from the data volume's size (the design's values on a large volume). */
export interface WalSizing {
  maxWalSizeMb: number;
  minWalSizeMb: number;
  walKeepSizeMb: number;
}

/**
 * WAL kept locally is bounded by the volume: max_wal_size = clamp(V/4, 64 MB, 8 GB),
 * min_wal_size = clamp(V/16, 32 MB, 1 GB), wal_keep_size = clamp(V/16, 0, 1 GB), for a data
 * volume of V MB. Already-archived WAL kept for recycling or replicas can then never take more
 * than about a third of the volume (on a 300 MB volume: 75 / 32 / 18 MB). Unknown size: the
 * design's 8 GB / 1 GB / 1 GB.
 */
export function computeWalSizing(volumeMb: number | undefined): WalSizing {
  if (volumeMb === undefined) {
    return { maxWalSizeMb: 8192, minWalSizeMb: 1024, walKeepSizeMb: 1024 };
  }
  return {
    maxWalSizeMb: clamp(div(volumeMb, 4), 64, 8192),
    minWalSizeMb: clamp(div(volumeMb, 16), 32, 1024),
    walKeepSizeMb: clamp(div(volumeMb, 16), 0, 1024),
  };
}

export function walSizingEntries(w: WalSizing, volumeMb: number | undefined): ConfEntry[] {
  const of = volumeMb === undefined ? "volume size unknown" : `volume ${volumeMb} MB`;
  return [
    { name: "max_wal_size", value: `${w.maxWalSizeMb}MB`, why: `clamp(V/4, 64MB, 8GB), ${of}` },
    { name: "min_wal_size", value: `${w.minWalSizeMb}MB`, why: `clamp(V/16, 32MB, 1GB), ${of}` },
    { name: "wal_keep_size", value: `${w.walKeepSizeMb}MB`, why: `clamp(V/16, 0, 1GB), ${of}` },
  ];
}
