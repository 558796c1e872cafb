/**
 * PID 1's reaper: orphans re-parented to us become zombies that nobody else will wait for.
 * Every tick, find our zombie children in /proc that Deno is not waiting for (see
 * process/registry.ts) and reap exactly those pids with waitpid(pid, WNOHANG) — never
 * waitpid(-1), which would steal a supervised child's exit status.
 */
import { waitpidNoHang } from "../../ffi/libc.ts";
import { isTracked } from "../process/registry.ts";
import { log } from "../util/log.ts";

/** PURE: zombie children of `parent` from (pid, /proc/<pid>/stat text) pairs. */
export function zombieChildren(parent: number, stats: Iterable<[number, string]>): number[] {
  const out: number[] = [];
  for (const [pid, stat] of stats) {
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" && Number(fields[1]) === parent) out.push(pid);
  }
  return out;
}

function* procStats(): Generator<[number, string]> {
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (!Number.isInteger(pid)) continue;
    try {
      yield [pid, Deno.readTextFileSync(`/proc/${pid}/stat`)];
    } catch { /* gone */ }
  }
}

export class Reaper {
  #timer: ReturnType<typeof setInterval> | undefined;
  reaped = 0;

  /** Reap what can be reaped now; returns how many. */
  reapNow(): number {
    let n = 0;
    let zombies: number[];
    try {
      zombies = zombieChildren(Deno.pid, procStats());
    } catch (error) {
      log.warn(`reaper: cannot scan /proc: ${error instanceof Error ? error.message : error}`);
      return 0;
    }
    for (const pid of zombies) {
      if (isTracked(pid)) continue; // Deno will collect it
      try {
        if (waitpidNoHang(pid)) n++;
      } catch (error) {
        log.debug(`reaper: waitpid ${pid}: ${error}`);
      }
    }
    this.reaped += n;
    return n;
  }

  start(intervalMs = 500): void {
    this.#timer = setInterval(() => this.reapNow(), intervalMs);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
