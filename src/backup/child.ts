/**
 * EFFECT: the control RPCs `backup` and `verify` run `beyond-pg backup|verify --json` as a child
 * process, so the hashing and buffering of a long backup never run on the supervisor's event
 * loop.
 */
import type { Context } from "../boot/context.ts";
import { CommandError } from "../rpc/dispatch.ts";
import { command } from "../process/command.ts";
import { outputTracked } from "../process/registry.ts";
import { selfArgv } from "../process/self.ts";
import { log } from "../util/log.ts";
import type { BackupManifest } from "./manifest.ts";
import type { VerifyReport } from "./verify.ts";

/** Where our own Deno finds its cache (development runs `deno run`; root's, never postgres's). */
function ownDenoEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["HOME", "DENO_DIR"]) {
    const v = Deno.env.get(key);
    if (v) out[key] = v;
  }
  return out;
}

export async function runBackupChild(
  ctx: Context,
  label?: string,
  o: { incremental?: boolean } = {},
): Promise<BackupManifest> {
  const m = await runChild<BackupManifest>(ctx, [
    "backup",
    "--json",
    ...(label ? ["--label", label] : []),
    ...(o.incremental ? ["--incremental"] : []),
  ]);
  if (m.note) log.warn(`backup: ${m.note}`); // the child's stderr is not the supervisor's log
  return m;
}

/**
 * The RPC `verify`: `beyond-pg verify --json` as a child (hashing every byte of a backup and
 * reading the WAL back stays off the supervisor's event loop). A verify that finds a problem
 * still answers with its report (ok: false, the first problem named). `restoreTest`: with
 * `--restore-test` (the child is root's, on this machine: where the restore test must run).
 */
export async function runVerifyChild(
  ctx: Context,
  o: { backup?: string; restoreTest?: boolean } = {},
): Promise<VerifyReport> {
  return await runChild<VerifyReport>(
    ctx,
    [
      "verify",
      "--json",
      ...(o.backup ? ["--backup", o.backup] : []),
      ...(o.restoreTest ? ["--restore-test"] : []),
    ],
    { reportOnFailure: true },
  );
}

async function runChild<T>(
  ctx: Context,
  args: string[],
  o: { reportOnFailure?: boolean } = {},
): Promise<T> {
  const [cmd, ...pre] = selfArgv();
  const out = await outputTracked(
    command(cmd!, {
      args: [...pre, ...args],
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
  const stdout = new TextDecoder().decode(out.stdout).trim();
  if (!out.success && !(o.reportOnFailure && out.code === 1 && stdout.startsWith("{"))) {
    throw new CommandError(
      "failed",
      (stderr.find((l) => l.startsWith("beyond-pg")) ?? stderr.at(-1) ??
        `${args[0]} exited ${out.code}`)
        .replace(/^beyond-pg( \S+)?: /, ""),
    );
  }
  return JSON.parse(stdout) as T;
}
