/**
 * EFFECT: one supervisor (or `boot`) per data root. An exclusive flock on
 * <root>/.beyond-pg.lock, held for the life of the process (the kernel drops it when we die,
 * even by kill -9).
 */
import { OperatorError } from "../util/errors.ts";

export async function lockDataRoot(path: string, waitMs = 1500): Promise<Deno.FsFile> {
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), waitMs)));
  const got = await Promise.race([file.lock(true).then(() => "locked" as const), timedOut]);
  clearTimeout(timer);
  if (got === "timeout") {
    throw new OperatorError(
      `Cannot start: another beyond-pg holds ${path}; stop it first (or use \`beyond-pg control\` to talk to it)`,
      { exitCode: 2 },
    );
  }
  return file;
}
