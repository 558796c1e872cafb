/** Crash-consistent copies of a live volume, as the platform's block snapshot makes them. */
import { freezeTree, type Instance, killPids } from "./harness.ts";

/** Freeze every process of an instance (SIGSTOP), run `fn`, thaw them (SIGCONT). */
export async function frozen<T>(pg: Instance, fn: () => Promise<T>): Promise<T> {
  const pids = freezeTree(pg);
  try {
    return await fn();
  } finally {
    killPids(pids, "SIGCONT");
  }
}

/** Copy a data root whole (owners, modes, links). */
export async function copyVolume(from: string, to: string): Promise<void> {
  const out = await new Deno.Command("cp", { args: ["-a", from, to], stderr: "piped" }).output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
}
