/**
 * EFFECT: the control RPC `backup` runs `beyond-pg backup --json` as a child process, so the
 * hashing and buffering of a long backup never run on the supervisor's event loop.
 */
import type { Context } from "../boot/context.ts";
import { CommandError } from "../rpc/dispatch.ts";
import { command } from "../process/command.ts";
import { outputTracked } from "../process/registry.ts";
import { selfArgv } from "../process/self.ts";
import type { BackupManifest } from "./manifest.ts";

/** Where our own Deno finds its cache (development runs `deno run`; root's, never postgres's). */
function ownDenoEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["HOME", "DENO_DIR"]) {
    const v = Deno.env.get(key);
    if (v) out[key] = v;
  }
  return out;
}

export async function runBackupChild(ctx: Context, label?: string): Promise<BackupManifest> {
  const [cmd, ...pre] = selfArgv();
  const out = await outputTracked(
    command(cmd!, {
      args: [...pre, "backup", "--json", ...(label ? ["--label", label] : [])],
      // Root's own command: it reads the private archive config itself (no key passed here).
      env: {
        BEYOND_PG_RUN_DIR: ctx.layout.runDir,
        DENO_NO_UPDATE_CHECK: "1",
        ...ownDenoEnv(),
      },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }),
  );
  const stderr = new TextDecoder().decode(out.stderr).trim().split("\n").filter(Boolean);
  if (!out.success) {
    throw new CommandError(
      "failed",
      (stderr.at(-1) ?? `backup exited ${out.code}`).replace(/^beyond-pg backup: /, ""),
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as BackupManifest;
}
