/**
 * PURE (over an injected file reader): RAM and vCPUs this VM or container may use.
 * Order: cgroup v2 (memory.max, cpu.max), else cgroup v1 (memory.limit_in_bytes,
 * cpu.cfs_quota_us / cpu.cfs_period_us), else /proc. A cgroup limit never raises what /proc
 * reports (a limit above the machine's RAM is no limit).
 */

export type ReadFile = (path: string) => string | undefined;

export interface Resources {
  ramMb: number;
  vcpus: number;
  /** Where each figure came from, e.g. "cgroup2" or "proc". */
  ramSource: string;
  cpuSource: string;
}

const UNLIMITED_BYTES = 2 ** 60;

function procRamMb(read: ReadFile): number | undefined {
  const match = read("/proc/meminfo")?.match(/^MemTotal:\s+(\d+)\s+kB/m);
  return match ? Math.floor(Number(match[1]) / 1024) : undefined;
}

/** "0-3,6" → 5 */
export function countCpuList(list: string): number {
  let count = 0;
  for (const part of list.trim().split(",")) {
    if (!part) continue;
    const [lo, hi] = part.split("-").map(Number);
    if (lo === undefined || Number.isNaN(lo)) continue;
    count += hi === undefined || Number.isNaN(hi) ? 1 : hi - lo + 1;
  }
  return count;
}

function procCpus(read: ReadFile): number | undefined {
  const online = read("/sys/devices/system/cpu/online");
  if (online && countCpuList(online) > 0) return countCpuList(online);
  const cpuinfo = read("/proc/cpuinfo");
  const n = cpuinfo?.match(/^processor\s*:/gm)?.length;
  return n && n > 0 ? n : undefined;
}

/** /proc/self/cgroup → { controller → path } ("" is the v2 unified entry). */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = line.match(/^\d+:([^:]*):(.*)$/);
    if (!match) continue;
    for (const controller of match[1]!.split(",")) out.set(controller, match[2]!);
  }
  return out;
}

/** Candidate directories from the process's own cgroup up to the mount root. */
function ancestry(mount: string, path: string | undefined): string[] {
  const dirs: string[] = [];
  let p = path && path !== "/" ? path.replace(/\/+$/, "") : "";
  while (p) {
    dirs.push(mount + p);
    p = p.slice(0, p.lastIndexOf("/"));
  }
  dirs.push(mount);
  return dirs;
}

function firstNumber(read: ReadFile, paths: string[]): number | undefined {
  for (const path of paths) {
    const text = read(path)?.trim();
    if (text === undefined || text === "") continue;
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  return undefined;
}

function minLimit(values: (number | undefined)[]): number | undefined {
  const real = values.filter((v): v is number => v !== undefined && v > 0 && v < UNLIMITED_BYTES);
  return real.length ? Math.min(...real) : undefined;
}

function cgroup2(read: ReadFile, groups: Map<string, string>) {
  const dirs = ancestry("/sys/fs/cgroup", groups.get(""));
  const memory = minLimit(dirs.map((d) => {
    const text = read(`${d}/memory.max`)?.trim();
    return text === undefined || text === "max" ? undefined : Number(text);
  }));
  let cpus: number | undefined;
  for (const d of dirs) {
    const text = read(`${d}/cpu.max`)?.trim();
    if (!text) continue;
    const [quota, period] = text.split(/\s+/);
    if (quota === "max" || quota === undefined) continue;
    const n = Math.ceil(Number(quota) / Number(period ?? 100000));
    if (Number.isFinite(n) && n > 0) cpus = cpus === undefined ? n : Math.min(cpus, n);
  }
  return { memory, cpus };
}

function cgroup1(read: ReadFile, groups: Map<string, string>) {
  const memDirs = ancestry("/sys/fs/cgroup/memory", groups.get("memory"));
  const memory = minLimit(memDirs.map((d) => firstNumber(read, [`${d}/memory.limit_in_bytes`])));
  let cpus: number | undefined;
  for (const mount of ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"]) {
    for (const d of ancestry(mount, groups.get("cpu"))) {
      const quota = firstNumber(read, [`${d}/cpu.cfs_quota_us`]);
      const period = firstNumber(read, [`${d}/cpu.cfs_period_us`]);
      if (quota === undefined || period === undefined || quota <= 0 || period <= 0) continue;
      const n = Math.ceil(quota / period);
      cpus = cpus === undefined ? n : Math.min(cpus, n);
    }
    if (cpus !== undefined) break;
  }
  return { memory, cpus };
}

export function detectResources(read: ReadFile): Resources {
  const ram = procRamMb(read) ?? 1024;
  const cpus = procCpus(read) ?? 1;
  const groups = parseProcCgroup(read("/proc/self/cgroup") ?? "");
  const v2 = read("/sys/fs/cgroup/cgroup.controllers") !== undefined;
  const limits = v2 ? cgroup2(read, groups) : cgroup1(read, groups);
  const kind = v2 ? "cgroup2" : "cgroup1";
  const memMb = limits.memory === undefined ? undefined : Math.floor(limits.memory / 2 ** 20);
  return {
    ramMb: memMb !== undefined && memMb < ram ? memMb : ram,
    ramSource: memMb !== undefined && memMb < ram ? kind : "proc",
    vcpus: limits.cpus !== undefined && limits.cpus < cpus ? limits.cpus : cpus,
    cpuSource: limits.cpus !== undefined && limits.cpus < cpus ? kind : "proc",
  };
}

/**
 * The real reader: a missing file is undefined. Any other failure (Deno refusing /proc to a
 * process without all permissions, say) is thrown: silently assuming defaults would mis-tune.
 */
export function readSystemFile(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotADirectory) {
      return undefined;
    }
    if (error instanceof Deno.errors.PermissionDenied) return undefined; // a cgroup file we may not read
    throw error;
  }
}

/**
 * What tuning is computed from: BEYOND_PG_RAM_MB / BEYOND_PG_VCPUS when set, else what the
 * cgroup (or /proc) says — the one place this rule lives (boot, reload and PID 1 use it).
 */
export function effectiveResources(
  overrides: { ramMb: number | undefined; vcpus: number | undefined },
  read: ReadFile = readSystemFile,
): { ramMb: number; vcpus: number; source: string } {
  const d = detectResources(read);
  return {
    ramMb: overrides.ramMb ?? d.ramMb,
    vcpus: overrides.vcpus ?? d.vcpus,
    source: `ram from ${overrides.ramMb ? "settings" : d.ramSource}, vcpus from ${
      overrides.vcpus ? "settings" : d.cpuSource
    }`,
  };
}

/** The kernel's total memory in MB, without /proc (PID 1 needs it before mounting /proc). */
export function kernelRamMb(): number {
  try {
    return Math.floor(Deno.systemMemoryInfo().total / 2 ** 20);
  } catch {
    return 1024;
  }
}
