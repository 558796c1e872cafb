/**
 * EFFECT: the control RPC `backup` runs `beyond-pg backup --json` as a child process, so the
 * hashing and buffering of a long backup never run on the supervisor's event loop.
 */
import type { Context } from "../context.ts";
import { CommandError } from "../control/commands.ts";
import { outputTracked } from "../process/registry.ts";
import { selfArgv } from "../self.ts";
import type { BackupManifest } from "./manifest.ts";

export async function runBackupChild(ctx: Context, label?: string): Promise<BackupManifest> {
  const [cmd, ...pre] = selfArgv();
  const out = await outputTracked(
    new Deno.Command(cmd!, {
      args: [...pre, "backup", "--json", ...(label ? ["--label", label] : [])],
      env: { ...ctx.hookEnv, DENO_NO_UPDATE_CHECK: "1" },
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
