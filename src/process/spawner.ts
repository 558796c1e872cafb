/**
 * Running short-lived commands: output collected, a timeout, and a failure turned into a
 * ProcessError that carries the exit code and the tail of stderr.
 */
import { errorMessage, OperatorError } from "../util/errors.ts";
import { command } from "./command.ts";
import { spawnTracked } from "./registry.ts";

export interface RunOptions {
  cwd?: string;
  /** Added to the allow-listed child environment. */
  env?: Record<string, string>;
  uid?: number;
  gid?: number;
  stdin?: string;
  timeoutMs?: number;
  /** Throw ProcessError on a non-zero exit (default true). */
  check?: boolean;
}

export interface RunResult {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
}

export class ProcessError extends OperatorError {
  readonly command: string;
  readonly code: number;
  readonly signal: Deno.Signal | null;
  readonly stderrTail: string;

  constructor(command: string, result: RunResult, what = "failed") {
    const tail = tailLines(result.stderr || result.stdout, 3);
    const how = result.signal ? `was killed by ${result.signal}` : `exited ${result.code}`;
    super(`${command} ${what}: ${how}${tail ? `: ${tail}` : ""}`);
    this.name = "ProcessError";
    this.command = command;
    this.code = result.code;
    this.signal = result.signal;
    this.stderrTail = tail;
  }
}

export function tailLines(text: string, n: number): string {
  return text.trim().split("\n").slice(-n).map((l) => l.trim()).filter(Boolean).join(" | ");
}

const decoder = new TextDecoder();

export async function run(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const cmdObject = command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env ?? {},
    uid: options.uid,
    gid: options.gid,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  let child: Deno.ChildProcess;
  try {
    child = spawnTracked(cmdObject);
  } catch (error) {
    throw new OperatorError(
      `cannot run ${cmd}: ${errorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin)).catch(() => {});
    await writer.close().catch(() => {});
  }
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  const result: RunResult = {
    code: out.code,
    signal: out.signal,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
  const name = cmd.split("/").pop() ?? cmd;
  if (timedOut) throw new ProcessError(name, result, `timed out after ${options.timeoutMs} ms`);
  if ((options.check ?? true) && !out.success) throw new ProcessError(name, result);
  return result;
}
