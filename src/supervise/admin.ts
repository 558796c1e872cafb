/**
 * EFFECT: the supervisor's own SQL connections for control commands and metrics: postgres over
 * the Unix socket (peer auth), PgBouncer's admin console and a client through PgBouncer (SCRAM
 * as postgres). Each is opened on first use and again after a failure, so a restarted postgres
 * needs nothing special. Long commands (CHECKPOINT, PAUSE) get a connection of their own so a
 * metrics scrape is never queued behind them.
 */
import type { Secret } from "../settings/secret.ts";
import { type ConnectOptions, PgConnection, PgError, type Row } from "../pg/client.ts";

export interface AdminOptions {
  socketDir: string;
  directPort: number;
  pgbouncerPort: number;
  password: Secret;
}

type Slot = "postgres" | "bouncer" | "through";

export class Admin {
  readonly #o: AdminOptions;
  readonly #conns = new Map<Slot, Promise<PgConnection>>();

  constructor(options: AdminOptions) {
    this.#o = options;
  }

  #options(slot: Slot | "long", database = "postgres"): ConnectOptions {
    const direct = slot === "postgres" || slot === "long";
    return {
      path: `${this.#o.socketDir}/.s.PGSQL.${direct ? this.#o.directPort : this.#o.pgbouncerPort}`,
      user: "postgres",
      database: slot === "bouncer" ? "pgbouncer" : database,
      ...(direct ? {} : { password: this.#o.password.reveal() }),
      applicationName: "beyond-pg-control",
      timeoutMs: 2000,
    };
  }

  async #run(slot: Slot, sql: string, timeoutMs: number): Promise<Row[]> {
    let pending = this.#conns.get(slot);
    if (!pending) {
      pending = PgConnection.connect(this.#options(slot));
      this.#conns.set(slot, pending);
    }
    try {
      const conn = await pending;
      if (conn.closed) throw new Error("connection closed");
      return await conn.query(sql, timeoutMs);
    } catch (error) {
      // A server error leaves the session usable; anything else means reconnect next time.
      if (!(error instanceof PgError) || error.severity === "FATAL") {
        this.#conns.delete(slot);
        pending.then((c) => c.close(), () => {});
      }
      throw error;
    }
  }

  query(sql: string, o: { timeoutMs?: number } = {}): Promise<Row[]> {
    return this.#run("postgres", sql, o.timeoutMs ?? 5000);
  }

  /** A query on another database (a short-lived connection). */
  async queryIn(database: string, sql: string): Promise<Row[]> {
    const conn = await PgConnection.connect(this.#options("long", database));
    try {
      return await conn.query(sql, 5000);
    } finally {
      conn.close();
    }
  }

  /** CHECKPOINT on a connection of its own (it may take minutes). */
  async checkpoint(timeoutMs: number): Promise<void> {
    const conn = await PgConnection.connect(this.#options("long"));
    try {
      await conn.query("SET statement_timeout = 0; CHECKPOINT", timeoutMs);
    } finally {
      conn.close();
    }
  }

  /** A PgBouncer admin console command (SHOW POOLS, PAUSE, RESUME, RELOAD). */
  bouncer(command: string, timeoutMs = 5000): Promise<Row[]> {
    return this.#run("bouncer", command, timeoutMs);
  }

  /** `SELECT 1` through PgBouncer (what an app does): proves 5432 serves queries. */
  async selectOneThroughPgbouncer(timeoutMs = 2000): Promise<void> {
    await this.#run("through", "SELECT 1", timeoutMs);
  }

  close(): Promise<void> {
    for (const p of this.#conns.values()) p.then((c) => c.close(), () => {});
    this.#conns.clear();
    return Promise.resolve();
  }
}
