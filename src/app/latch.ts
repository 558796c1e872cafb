/**
 * The one stop latch of a process: SIGTERM, SIGINT, Ctrl-Alt-Del, the power button or a
 * command ask once; whoever is running then (or starts later) is told once. PID 1 and the plain
 * process share it, so a stop that arrives while settings are still being gathered counts.
 */
export class StopLatch {
  #reason: string | undefined;
  readonly #controller = new AbortController();
  readonly #listeners: ((why: string) => void)[] = [];

  /** Aborts when a stop is requested. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get reason(): string | undefined {
    return this.#reason;
  }

  request(why: string): void {
    if (this.#reason !== undefined) return;
    this.#reason = why;
    this.#controller.abort();
    for (const l of this.#listeners.splice(0)) l(why);
  }

  /** Call `fn` on the stop (at once when it was already requested). */
  onStop(fn: (why: string) => void): void {
    if (this.#reason !== undefined) fn(this.#reason);
    else this.#listeners.push(fn);
  }

  /** SIGTERM and SIGINT (Deno as PID 1 without a SIGTERM listener crashes on SIGTERM). */
  listenToSignals(labels: { SIGINT?: string } = {}): void {
    Deno.addSignalListener("SIGTERM", () => this.request("SIGTERM"));
    Deno.addSignalListener("SIGINT", () => this.request(labels.SIGINT ?? "SIGINT"));
  }
}
