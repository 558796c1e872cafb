/**
 * Explicit huge pages for postgres's shared memory, as PID 1 in our own VM, when asked for
 * (BEYOND_PG_HUGE_PAGES=on; the design: "vm.nr_hugepages + huge_pages"; THP stays off).
 * Whether they pay depends on what a page fault costs against zeroing 2 MiB at once: on this
 * machine's host (a VM whose page faults are slow) postgres's exec → ready went 285 → 148 ms
 * and a clean stop 384 → 250 ms; in the QEMU TCG test VM init → ready went 8.9 → 11.1 s
 * (bench/vm.ts). So off by default. postgres keeps `huge_pages = try`: with too few pages it
 * uses 4 KiB pages as before, and says nothing; we say it.
 *
 * Right before postgres first starts, a bound is reserved (the pool never shrinks below what is
 * in use); once it is up, the pool is trimmed to what it mapped (0 when it mapped none), so the
 * rest of RAM is free again. A later restart that needs more shared memory (a larger
 * shared_buffers in user.conf) runs on 4 KiB pages until the next boot.
 */
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";
import { writeSystemFile } from "./system.ts";

const NR = "/proc/sys/vm/nr_hugepages";

export interface HugePageInfo {
  total: number;
  free: number;
  reserved: number;
  sizeKb: number;
}

/** PURE: the huge-page lines of /proc/meminfo. */
export function parseMeminfo(text: string): HugePageInfo {
  const kb = (k: string) => Number(text.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
  return {
    total: kb("HugePages_Total"),
    free: kb("HugePages_Free"),
    reserved: kb("HugePages_Rsvd"),
    sizeKb: kb("Hugepagesize"),
  };
}

/** PURE: pages mapped by someone (faulted in, or reserved for a mapping). */
export function pagesInUse(i: HugePageInfo): number {
  return i.total - i.free + i.reserved;
}

/**
 * PURE: an upper bound of postgres's shared memory in MiB for this RAM, from the tuning's
 * formulas at their largest (shared_buffers = max(128, RAM/4), wal_buffers ≤ 16 MiB,
 * max_connections ≤ max(100, RAM/50)) plus the fixed part (locks, pg_stat_statements, SLRUs:
 * 27 MiB measured at 1 GiB; 48 allowed) and ~200 KiB per connection.
 */
export function sharedMemoryBoundMb(ramMb: number): number {
  const sharedBuffers = Math.max(128, Math.floor(ramMb / 4));
  const connections = Math.max(100, Math.floor(ramMb / 50));
  return sharedBuffers + 16 + 48 + Math.ceil(connections / 5);
}

function meminfo(): HugePageInfo | undefined {
  try {
    return parseMeminfo(Deno.readTextFileSync("/proc/meminfo"));
  } catch {
    return undefined;
  }
}

function setPool(pages: number): void {
  writeSystemFile(NR, `${pages}\n`);
}

/** Grow the pool to cover postgres's shared memory (before it starts). */
export function reserveHugePages(ramMb: number): void {
  const before = meminfo();
  if (!before?.sizeKb) return; // no hugetlbfs in this kernel
  const want = Math.ceil((sharedMemoryBoundMb(ramMb) * 1024) / before.sizeKb);
  const target = pagesInUse(before) + want;
  if (before.total >= target) return;
  try {
    setPool(target);
  } catch (error) {
    log.warn(
      `huge pages: cannot reserve ${want}: ${errorMessage(error)}; postgres uses 4 KiB pages`,
    );
    return;
  }
  const after = meminfo();
  if (after && after.total < target) {
    // postgres maps its segment in one piece: a pool short of it is only wasted memory.
    try {
      setPool(before.total);
    } catch { /* trimmed once postgres is up */ }
    log.warn(
      `huge pages: only ${after.total} of ${target} could be reserved (memory is fragmented); postgres uses 4 KiB pages`,
    );
  }
}

/** Once postgres is up: give back what it did not map, and say whether it used them. */
export function trimHugePages(): void {
  const now = meminfo();
  if (!now?.sizeKb || now.total === 0) return;
  const used = pagesInUse(now);
  try {
    if (used < now.total) setPool(used);
  } catch (error) {
    log.warn(`huge pages: cannot release the unused: ${errorMessage(error)}`);
  }
  if (used === 0) {
    log.warn(
      "huge pages: postgres did not use them (its shared memory is larger than the reserve: a shared_buffers in user.conf?); it runs on 4 KiB pages",
    );
  } else {
    log.info(`huge pages: postgres maps ${used} (${Math.round((used * now.sizeKb) / 1024)} MiB)`);
  }
}
