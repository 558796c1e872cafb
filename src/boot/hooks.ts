/**
 * EFFECT: run the executables of a hook directory (pre-start.d, post-start.d, pre-stop.d,
 * pre-fork.d) in name order, each with a timeout, its output prefixed line by line, and an
 * allow-listed environment (never the password).
 *
 * Hooks run as root, so a hook is run only when root alone could have put it there: the hook
 * directory and every directory above it owned by root and not writable by group or others,
 * and the hook itself (after links) owned by root and not group- or world-writable. Anything
 * else is refused with one line (Debian makes /etc/postgresql postgres's, which is why our
 * default is /etc/beyond-pg/hooks).
 */
import { command } from "../process/command.ts";
import { rootChainProblem } from "../fs/tree.ts";
import { spawnTracked } from "../process/registry.ts";
import { log } from "../util/log.ts";
import { pipeLines } from "../logs/lines.ts";

export type HookStage = "pre-start" | "post-start" | "pre-stop" | "pre-fork";

export interface HookResult {
  name: string;
  code: number;
  timedOut: boolean;
}

/** Why root must not run `path` (a hook), or undefined when it is root's alone. */
export function hookProblem(path: string): string | undefined {
  let real: string;
  try {
    real = Deno.realPathSync(path);
  } catch {
    return `${path} cannot be resolved`;
  }
  const dir = real.slice(0, real.lastIndexOf("/")) || "/";
  const above = rootChainProblem(dir);
  if (above) return above;
  const info = Deno.statSync(real);
  if (!info.isFile) return `${real} is not a file`;
  if (info.uid !== 0 && info.uid !== Deno.uid()) return `${real} is owned by uid ${info.uid}`;
  if (((info.mode ?? 0) & 0o022) !== 0) return `${real} is writable by group or others`;
  return undefined;
}

/** A stage directory's entries, dot-files left out ([] when there is no such directory). */
function stageEntries(dir: string): Deno.DirEntry[] {
  try {
    return [...Deno.readDirSync(dir)].filter((e) => !e.name.startsWith("."));
  } catch {
    return [];
  }
}

function executables(dir: string, stage: HookStage): string[] {
  return stageEntries(dir)
    .filter((e) => e.isFile || e.isSymlink)
    .map((e) => e.name)
    .filter((name) => {
      try {
        if (((Deno.statSync(`${dir}/${name}`).mode ?? 0) & 0o111) === 0) return false;
      } catch {
        return false;
      }
      const problem = hookProblem(`${dir}/${name}`);
      if (problem) {
        log.error(
          `hook ${stage}/${name} refused: ${problem}; only root may be able to change a hook (chown root, chmod go-w, in a root-owned directory)`,
        );
      }
      return !problem;
    })
    .sort();
}

/** Whether `stage` has anything that may be a hook (refused ones count too). */
export function hasHooks(hooksDir: string, stage: HookStage): boolean {
  return stageEntries(`${hooksDir}/${stage}.d`).length > 0;
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
  for (const name of executables(dir, stage)) {
    const prefix = `[hook ${stage}/${name}] `;
    const child = spawnTracked(
      command(`${dir}/${name}`, {
        cwd: dir,
        env: { ...options.env, BEYOND_PG_HOOK_STAGE: stage },
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
