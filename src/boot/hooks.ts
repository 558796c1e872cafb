/**
 * EFFECT: run the executables of a hook directory (pre-start.d, post-start.d, pre-stop.d,
 * pre-fork.d) in name order, each with a timeout, its output prefixed line by line, and an
 * allow-listed environment (never the password).
 */
import { childEnv } from "../process/env.ts";
import { spawnTracked } from "../process/registry.ts";
import { log } from "../util/log.ts";
import { pipeLines } from "../logs/lines.ts";

export type HookStage = "pre-start" | "post-start" | "pre-stop" | "pre-fork";

export interface HookResult {
  name: string;
  code: number;
  timedOut: boolean;
}

function executables(dir: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return [];
  }
  return entries
    .filter((e) => (e.isFile || e.isSymlink) && !e.name.startsWith("."))
    .map((e) => e.name)
    .filter((name) => {
      try {
        return ((Deno.statSync(`${dir}/${name}`).mode ?? 0) & 0o111) !== 0;
      } catch {
        return false;
      }
    })
    .sort();
}

export interface RunHooksOptions {
  hooksDir: string;
  timeoutMs: number;
  env: Record<string, string>;
  /** Print a line of hook output (prefixed); defaults to the log writer. */
  output?: (line: string) => void;
}

export async function runHooks(stage: HookStage, options: RunHooksOptions): Promise<HookResult[]> {
  const dir = `${options.hooksDir}/${stage}.d`;
  const results: HookResult[] = [];
  const out = options.output ?? ((line: string) => log.info(line));
  for (const name of executables(dir)) {
    const prefix = `[hook ${stage}/${name}] `;
    const child = spawnTracked(
      new Deno.Command(`${dir}/${name}`, {
        cwd: dir,
        env: childEnv({ ...options.env, BEYOND_PG_HOOK_STAGE: stage }),
        clearEnv: true,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }),
    );
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }, options.timeoutMs);
    const piping = Promise.all([
      pipeLines(child.stdout, (l) => out(prefix + l)),
      pipeLines(child.stderr, (l) => out(prefix + l)),
    ]);
    const status = await child.status;
    clearTimeout(timer);
    await piping;
    const code = status.signal ? 128 : status.code;
    results.push({ name, code, timedOut });
    if (timedOut) {
      log.warn(`hook ${stage}/${name} timed out after ${options.timeoutMs} ms and was killed`);
    } else if (code !== 0) log.warn(`hook ${stage}/${name} exited ${code}`);
  }
  return results;
}
