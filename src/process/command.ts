/**
 * The one way to make a Deno.Command (a source test fails on any other): the child gets an
 * allow-listed environment, never ours (the password, the S3 keys and whatever else a platform
 * put in our environment must not reach postgres, PgBouncer, tools or hooks).
 *
 * A child to run as another user (uid and gid, from root, no cwd) goes through `setpriv`
 * (util-linux): it sets the groups, gid and uid as Deno would, then execs the command (same
 * PID). Deno sets them itself in a fork() of this whole process (~15 ms of CPU and ~30 ms per
 * spawn here, with the supervisor's memory); without them it spawns by vfork: ~7 ms. That is
 * one zstd per archived segment. With a cwd, Deno's own way: the directory is entered as the
 * user, never by root.
 */
import { childEnv } from "./env.ts";

export type CommandOptions = Omit<Deno.CommandOptions, "env" | "clearEnv"> & {
  /** Added to the allow-listed environment (process/env.ts). */
  env?: Record<string, string>;
};

export function command(cmd: string | URL, o: CommandOptions = {}): Deno.Command {
  const spec = commandSpec(cmd, o);
  return new Deno.Command(spec.cmd, spec.options);
}

/** What command() runs: the program and Deno's options (exported for its test). */
export function commandSpec(
  cmd: string | URL,
  o: CommandOptions,
): { cmd: string | URL; options: Deno.CommandOptions } {
  const options: Deno.CommandOptions = { ...o, env: childEnv(o.env), clearEnv: true };
  const { uid, gid } = o;
  if (uid === undefined || gid === undefined || o.cwd !== undefined || typeof cmd !== "string") {
    return { cmd, options };
  }
  const via = isRoot() ? setprivPath() : undefined;
  if (!via) return { cmd, options };
  delete options.uid;
  delete options.gid;
  return {
    cmd: via,
    options: {
      ...options,
      args: [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", cmd, ...(o.args ?? [])],
    },
  };
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false; // no sys permission: Deno's own way
  }
}

let setpriv: string | null | undefined;

function setprivPath(): string | undefined {
  if (setpriv === undefined) {
    setpriv = null;
    for (const p of ["/usr/bin/setpriv", "/bin/setpriv"]) {
      try {
        if (Deno.statSync(p).isFile) {
          setpriv = p;
          break;
        }
      } catch { /* not here */ }
    }
  }
  return setpriv ?? undefined;
}
