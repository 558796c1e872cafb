/**
 * EFFECT: one supervisor (or `boot`) per data root. An exclusive flock on
 * <root>/.beyond-pg.lock, held for the life of the process (the kernel drops it when we die,
 * even by kill -9). The data root is postgres's, so the file is opened as postgres.
 */
import type { PgTree } from "../fs/tree.ts";
import { OperatorError } from "../util/errors.ts";

export async function lockDataRoot(
  data: PgTree,
  path: string,
  waitMs = 1500,
): Promise<Deno.FsFile> {
  const file = data.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), waitMs)));
  const got = await Promise.race([file.lock(true).then(() => "locked" as const), timedOut]);
  clearTimeout(timer);
  if (got === "timeout") {
    file.close();
    throw new OperatorError(
      `Cannot start: another beyond-pg holds ${path}; stop it first (or use \`beyond-pg control\` to talk to it)`,
      { exitCode: 2 },
    );
  }
  return file;
}
