/**
 * PID 1's reaper: orphans re-parented to us become zombies that nobody else will wait for.
 * On SIGCHLD (and every 10 s as a fallback), find our zombie children that Deno is not
 * waiting for (see process/registry.ts) and reap exactly those pids with
 * waitpid(pid, WNOHANG) — never waitpid(-1), which would steal a supervised child's exit
 * status. Children are listed from /proc/self/task/<tid>/children (a handful of files);
 * the fallback scans all of /proc, since that list is documented as best effort.
 */
import { waitpidNoHang } from "../../ffi/mod.ts";
import { isTracked } from "../process/registry.ts";
import { log } from "../util/log.ts";
import { allPids, parseStat } from "../util/proc.ts";
import { errorMessage } from "../util/errors.ts";

/** PURE: zombie children of `parent` from (pid, /proc/<pid>/stat text) pairs. */
export function zombieChildren(parent: number, stats: Iterable<[number, string]>): number[] {
  const out: number[] = [];
  for (const [pid, stat] of stats) {
    const s = parseStat(stat);
    if (s?.state === "Z" && s.ppid === parent) out.push(pid);
  }
  return out;
}

function* candidates(full: boolean): Generator<number> {
  if (full) {
    yield* allPids();
    return;
  }
  for (const task of Deno.readDirSync("/proc/self/task")) {
    try {
      const text = Deno.readTextFileSync(`/proc/self/task/${task.name}/children`);
      for (const pid of text.split(" ")) if (pid.trim()) yield Number(pid);
    } catch { /* thread gone, or no CONFIG_PROC_CHILDREN: the full scan covers it */ }
  }
}

function* procStats(full: boolean): Generator<[number, string]> {
  for (const pid of candidates(full)) {
    try {
      yield [pid, Deno.readTextFileSync(`/proc/${pid}/stat`)];
    } catch { /* gone */ }
  }
}

export class Reaper {
  #timer: ReturnType<typeof setInterval> | undefined;
  #pending: ReturnType<typeof setTimeout> | undefined;
  #onChild = () => {
    // A burst of exits is one scan, shortly after the first.
    this.#pending ??= setTimeout(() => {
      this.#pending = undefined;
      this.reapNow(false);
    }, 20);
  };
  reaped = 0;

  /** Reap what can be reaped now; returns how many. */
  reapNow(full = true): number {
    let n = 0;
    let zombies: number[];
    try {
      zombies = zombieChildren(Deno.pid, procStats(full));
    } catch (error) {
      log.warn(`reaper: cannot scan /proc: ${errorMessage(error)}`);
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

  start(fallbackMs = 10_000): void {
    try {
      Deno.addSignalListener("SIGCHLD", this.#onChild);
    } catch (error) {
      log.warn(`reaper: no SIGCHLD listener (${error}); scanning every 500 ms instead`);
      fallbackMs = 500;
    }
    this.#timer = setInterval(() => this.reapNow(true), fallbackMs);
  }

  stop(): void {
    clearInterval(this.#timer);
    clearTimeout(this.#pending);
    try {
      Deno.removeSignalListener("SIGCHLD", this.#onChild);
    } catch { /* never added */ }
  }
}
