/**
 * `beyond-pg permissions` — print which Deno permissions each subcommand keeps.
 * `beyond-pg permissions --check <command>` — apply that command's profile to this process
 * and try to spawn a process and to load libc through FFI, printing what happened (the
 * tests use this to prove, e.g., that `archive` can do neither).
 */
import { command as childCommand } from "../process/command.ts";
import { applyProfile, matrix, profiles } from "../security/permissions.ts";

export function main(args: string[]): Promise<number> {
  const i = args.indexOf("--check");
  if (i < 0) {
    console.log(matrix());
    return Promise.resolve(0);
  }
  const command = args[i + 1] ?? "";
  if (!profiles[command]) {
    console.error(`beyond-pg permissions: unknown command ${JSON.stringify(command)}`);
    return Promise.resolve(2);
  }
  // This process was started with the permissions profile of `permissions`; re-narrow it to
  // the command's (a narrower or equal set) and probe.
  applyProfile(command);
  const probe = (what: string, f: () => void) => {
    try {
      f();
      return `${what}: allowed`;
    } catch (error) {
      return `${what}: denied (${error instanceof Error ? error.name : error})`;
    }
  };
  console.log(probe("run", () => childCommand("true").outputSync()));
  console.log(
    probe(
      "ffi",
      () => Deno.dlopen("libc.so.6", { getpid: { parameters: [], result: "i32" } }).close(),
    ),
  );
  return Promise.resolve(0);
}
