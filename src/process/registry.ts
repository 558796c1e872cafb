/**
 * Children Deno itself is waiting for (spawned with Deno.Command). PID 1's reaper must never
 * wait for these: it would steal the exit status Deno reports (CloudNativePG hit exactly this).
 */
const tracked = new Set<number>();

export function track(pid: number): void {
  tracked.add(pid);
}

export function untrack(pid: number): void {
  tracked.delete(pid);
}

export function isTracked(pid: number): boolean {
  return tracked.has(pid);
}

/**
 * Spawn through Deno.Command and keep the pid registered until Deno has its status. Every
 * asynchronous spawn in the supervisor's process goes through here or `outputTracked` (a
 * source test checks): under PID 1 an untracked child that exits can be reaped by the reaper
 * before Deno collects it, and whoever awaits it then waits forever.
 */
export function spawnTracked(command: Deno.Command): Deno.ChildProcess {
  const child = command.spawn();
  track(child.pid);
  child.status.finally(() => untrack(child.pid));
  return child;
}

/** `command.output()`, tracked (the command must not pipe stdin). */
export function outputTracked(command: Deno.Command): Promise<Deno.CommandOutput> {
  try {
    return spawnTracked(command).output();
  } catch (error) {
    return Promise.reject(error);
  }
}
