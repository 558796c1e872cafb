/**
 * EFFECT: one supervised child (postgres or PgBouncer): spawned in its own session so a
 * terminal's Ctrl-C reaches only the supervisor, output handed on line by line with its name,
 * the last lines kept for error reports.
 */
import { command } from "../process/command.ts";
import type { ExitStatus } from "./exit.ts";
import type { RootTree } from "../fs/tree.ts";
import { pipeLines } from "../logs/lines.ts";
import { FifoOutput } from "../process/fifo.ts";
import { spawnTracked } from "../process/registry.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

/** Where a child's output goes (the log forwarder); `tap` sees every line first. */
export interface OutputPump {
  /** True: the child writes to our stdout/stderr directly (no pipe, no prefix, no limits). */
  inherit?: boolean;
  pump(
    source: string,
    stream: ReadableStream<Uint8Array>,
    tap?: (line: string) => void,
  ): Promise<void>;
}

/** Output nobody reads (a build-time server), still drained so the child never blocks. */
export const discardOutput: OutputPump = {
  pump: (_source, stream, tap) => pipeLines(stream, (line) => tap?.(line)),
};

export interface ChildSpec {
  name: string;
  cmd: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  runAs: { uid: number; gid: number } | undefined;
  /** Route output through a FIFO made here (see process/fifo.ts); else plain pipes. */
  fifoDir?: RootTree;
}

const TAIL = 40;

/** What a supervised process looks like to the loop that restarts it (child_loop.ts). */
export interface ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: Promise<ExitStatus>;
  readonly running: boolean;
  readonly exitStatus: ExitStatus | undefined;
  tail(): string[];
  signal(sig: Deno.Signal): void;
  stop(sig: Deno.Signal, ms: number): Promise<boolean>;
}

export class Child implements ChildHandle {
  readonly name: string;
  readonly pid: number;
  readonly startedAt: number;
  /** Settles when the process has exited and its output is drained. */
  readonly exited: Promise<ExitStatus>;
  readonly #process: Deno.ChildProcess;
  readonly #tail: string[] = [];
  #exitStatus: ExitStatus | undefined;

  constructor(spec: ChildSpec, output: OutputPump) {
    this.name = spec.name;
    let fifo: FifoOutput | undefined;
    if (spec.fifoDir && !output.inherit) {
      try {
        fifo = new FifoOutput(spec.fifoDir, spec.name, spec.runAs);
      } catch (error) {
        log.debug(`${spec.name}: output through a pipe (${errorMessage(error)})`);
      }
    }
    const [cmd, args] = fifo
      // The shell opens the FIFO as the child's stdout and stderr, then becomes the child.
      ? ["/bin/sh", [
        "-c",
        'f=$1; shift; exec "$@" >"$f" 2>&1',
        "sh",
        fifo.path,
        spec.cmd,
        ...spec.args,
      ]]
      : [spec.cmd, spec.args];
    const piped = !output.inherit && !fifo;
    try {
      this.#process = spawnTracked(
        command(cmd, {
          args,
          cwd: spec.cwd,
          env: spec.env,
          uid: spec.runAs?.uid,
          gid: spec.runAs?.gid,
          stdin: "null",
          stdout: piped ? "piped" : output.inherit ? "inherit" : "null",
          stderr: piped ? "piped" : output.inherit ? "inherit" : "null",
          detached: true,
        }),
      );
    } catch (error) {
      fifo?.close();
      throw error;
    }
    this.pid = this.#process.pid;
    this.startedAt = performance.now();
    const onLine = (line: string) => {
      this.#tail.push(line);
      if (this.#tail.length > TAIL) this.#tail.shift();
    };
    const drained = output.inherit
      ? Promise.resolve()
      : fifo
      ? output.pump(spec.name, fifo.stream(), onLine)
      : Promise.all([
        output.pump(spec.name, this.#process.stdout, onLine),
        output.pump(spec.name, this.#process.stderr, onLine),
      ]);
    this.exited = this.#process.status.then(async (s) => {
      fifo?.end();
      await drained;
      fifo?.close();
      this.#exitStatus = { code: s.code, signal: s.signal };
      return this.#exitStatus;
    });
  }

  get running(): boolean {
    return this.#exitStatus === undefined;
  }

  get exitStatus(): ExitStatus | undefined {
    return this.#exitStatus;
  }

  /** The last lines of output (for "why did it fail"). */
  tail(): string[] {
    return [...this.#tail];
  }

  signal(sig: Deno.Signal): void {
    if (!this.running) return;
    try {
      this.#process.kill(sig);
    } catch { /* exited in between */ }
  }

  /** Send `sig`, wait up to `ms`; true when it exited in time. */
  async stop(sig: Deno.Signal, ms: number): Promise<boolean> {
    this.signal(sig);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    const done = await Promise.race([this.exited.then(() => true as const), timeout]);
    clearTimeout(timer);
    return done;
  }
}
