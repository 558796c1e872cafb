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
 *
 * A child in its own session (`detached`: postgres, PgBouncer) goes through `setsid`
 * (util-linux) for the same reason: Deno makes the session in a fork() too. A fork also leaves
 * every page of this process write-protected, so the supervisor pays a fault (~14 µs here) on
 * the first write to each afterwards: 145 ms to touch 40 MB, against 0.5 ms after a vfork.
 * `setsid` does not fork (a spawned child is never a group leader) and execs the command (same
 * PID). Without the binary, Deno's own way. Two differences from Deno's way, both harmless here:
 * the session starts a moment after spawn() returns (a signal in between meets setsid or setpriv
 * with default handlers, as with setpriv alone), and Deno marks a child that is not `detached`
 * kill-on-drop, which only acts if its handle is dropped while it runs (it is not: the
 * supervisor awaits every child's status, and a child survives Deno's exit either way).
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
  if (typeof cmd !== "string") return { cmd, options };
  let spec: { cmd: string; options: Deno.CommandOptions } = { cmd, options };
  const { uid, gid } = o;
  const via = uid !== undefined && gid !== undefined && o.cwd === undefined && isRoot()
    ? utilLinux("setpriv")
    : undefined;
  if (via) {
    delete options.uid;
    delete options.gid;
    spec = {
      cmd: via,
      options: {
        ...options,
        args: [`--reuid=${uid}`, `--regid=${gid}`, "--clear-groups", "--", cmd, ...(o.args ?? [])],
      },
    };
  }
  // Deno's uid/gid (a cwd, or no setpriv) fork anyway: no gain from setsid then.
  const session = o.detached && spec.options.uid === undefined ? utilLinux("setsid") : undefined;
  if (session) {
    delete spec.options.detached;
    spec = {
      cmd: session,
      options: { ...spec.options, args: ["--", spec.cmd, ...(spec.options.args ?? [])] },
    };
  }
  return spec;
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false; // no sys permission: Deno's own way
  }
}

const found = new Map<string, string | null>();

/** A util-linux program at its usual path (root-owned system binaries), or undefined. */
function utilLinux(name: "setpriv" | "setsid"): string | undefined {
  let path = found.get(name);
  if (path === undefined) {
    path = null;
    for (const p of [`/usr/bin/${name}`, `/bin/${name}`]) {
      try {
        if (Deno.statSync(p).isFile) {
          path = p;
          break;
        }
      } catch { /* not here */ }
    }
    found.set(name, path);
  }
  return path ?? undefined;
}
