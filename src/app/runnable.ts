/**
 * Runnables (as CloudNativePG's instance manager adds them to its manager): each long-running
 * concern next to the supervisor — control, HTTP, archiving, the TLS watcher, the recovery-point
 * keeper, and next the WAL sink and the replication monitor — is `{ name, start(signal), close() }`,
 * registered in one list with the moment it starts. The root starts them in order and closes
 * them in reverse, whatever happened in between.
 */

export interface Runnable {
  readonly name: string;
  /** Start; long work runs in the background until `stop` aborts or `close` is called. */
  start(stop: AbortSignal): void | Promise<void>;
  close(): void | Promise<void>;
}

/** When a runnable starts: at once, once PGDATA and config exist, or once 5432 serves. */
export type Phase = "now" | "booted" | "ready";

export class Runnables {
  readonly #entries: { phase: Phase; make: () => Runnable | undefined }[] = [];
  readonly #started: Runnable[] = [];
  readonly #stop: AbortSignal;

  constructor(stop: AbortSignal) {
    this.#stop = stop;
  }

  /** Register a runnable, made when its phase comes (undefined: not needed this time). */
  add(phase: Phase, make: () => Runnable | undefined): void {
    this.#entries.push({ phase, make });
  }

  /** Start everything registered for `phase`, in order. */
  async enter(phase: Phase): Promise<void> {
    for (const e of this.#entries.filter((x) => x.phase === phase)) {
      if (this.#stop.aborted) return;
      const r = e.make();
      if (!r) continue;
      this.#started.push(r);
      await r.start(this.#stop);
    }
  }

  /** Close what was started, newest first; a failing close does not stop the others. */
  async closeAll(): Promise<void> {
    for (const r of this.#started.splice(0).reverse()) {
      try {
        await r.close();
      } catch { /* best effort on the way out */ }
    }
  }
}
