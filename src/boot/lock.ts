/**
 * EFFECT: one supervisor (or `boot`) per data root. An exclusive flock on
 * <root>/.beyond-pg.lock, held for the life of the process (the kernel drops it when we die,
 * even by kill -9). The data root is postgres's, so the file is opened as postgres.
 */
import type { PgTree } from "../fs/tree.ts";
import { OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";

export async function lockDataRoot(
  data: PgTree,
  path: string,
  waitMs = 1500,
): Promise<Deno.FsFile> {
  const file = data.open(path, { read: true, write: true, create: true, mode: 0o600 });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), waitMs)));
  const locked = file.lock(true).then(() => "locked" as const);
  if (waitMs > 1500) {
    // A next generation started before the handoff: say once what it waits for.
    let quick: ReturnType<typeof setTimeout> | undefined;
    const slow = new Promise<"slow">((r) => (quick = setTimeout(() => r("slow"), 200)));
    if ((await Promise.race([locked, slow])) === "slow") {
      log.info(
        `waiting up to ${Math.round(waitMs / 1000)} s for ${path} (another beyond-pg holds it)`,
      );
    }
    clearTimeout(quick);
  }
  const got = await Promise.race([locked, timedOut]);
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

/**
 * The lock as the root holds it: a generation handoff lets go of it once postgres has stopped
 * (the next generation takes it) and takes it back when the handoff is aborted.
 */
export class VolumeLock {
  #file: Deno.FsFile | undefined;
  readonly #take: () => Promise<Deno.FsFile>;

  constructor(file: Deno.FsFile, take: () => Promise<Deno.FsFile>) {
    this.#file = file;
    this.#take = take;
  }

  get held(): boolean {
    return this.#file !== undefined;
  }

  release(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  /** Take it again (throws the one-line error when another supervisor holds it now). */
  async reacquire(): Promise<void> {
    if (!this.#file) this.#file = await this.#take();
  }

  close(): void {
    this.release();
  }
}
