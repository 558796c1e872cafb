/**
 * Idle keep-alive connections, per origin: at most `maxIdle` each, the most recently used
 * handed out first (the least likely to have been closed by the store), each closed after
 * `keepAliveMs` unused. The expiry timers are unref'd: an idle connection never keeps the
 * process alive.
 */

export interface Closable {
  close(): void;
}

interface Idle<T> {
  conn: T;
  timer: ReturnType<typeof setTimeout>;
}

export class IdlePool<T extends Closable> {
  readonly #maxIdle: number;
  readonly #keepAliveMs: number;
  readonly #idle = new Map<string, Idle<T>[]>();
  #closed = false;

  /** Defaults: 8 idle connections per origin, each kept 30 s. */
  constructor({ maxIdle = 8, keepAliveMs = 30_000 }: { maxIdle?: number; keepAliveMs?: number }) {
    this.#maxIdle = maxIdle;
    this.#keepAliveMs = keepAliveMs;
  }

  /** An idle connection to `origin`, or undefined. */
  take(origin: string): T | undefined {
    const list = this.#idle.get(origin);
    const entry = list?.pop();
    if (!entry) return undefined;
    if (!list!.length) this.#idle.delete(origin);
    clearTimeout(entry.timer);
    return entry.conn;
  }

  /** Keep `conn` for the next request to `origin` (or close it: pool full or closed). */
  put(origin: string, conn: T): void {
    if (this.#closed || this.#maxIdle <= 0) return quietClose(conn);
    const list = this.#idle.get(origin) ?? [];
    this.#idle.set(origin, list);
    const entry: Idle<T> = {
      conn,
      timer: setTimeout(() => {
        const at = list.indexOf(entry);
        if (at !== -1) list.splice(at, 1);
        if (!list.length && this.#idle.get(origin) === list) this.#idle.delete(origin);
        quietClose(conn);
      }, this.#keepAliveMs),
    };
    Deno.unrefTimer(Number(entry.timer));
    list.push(entry);
    while (list.length > this.#maxIdle) {
      const oldest = list.shift()!;
      clearTimeout(oldest.timer);
      quietClose(oldest.conn);
    }
  }

  /** How many connections to `origin` (or in all) are idle. */
  size(origin?: string): number {
    if (origin !== undefined) return this.#idle.get(origin)?.length ?? 0;
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** Close every idle connection; later ones are closed as they come back. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) {
      for (const { conn, timer } of list) {
        clearTimeout(timer);
        quietClose(conn);
      }
    }
    this.#idle.clear();
  }
}

function quietClose(conn: Closable): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
