/**
 * pgbench-style clients that record what was acknowledged: each runs one INSERT of a unique id
 * per transaction on its own connection, and notes the time of every commit. A server error
 * (the connection stays usable) is a failed transaction; a lost connection with a transaction
 * in flight is reported as in flight, and the same id is sent again on a new connection
 * (`ON CONFLICT DO NOTHING`: if it had committed, the retry changes nothing).
 */
import { PgConnection, PgError } from "../../src/pg/client.ts";

export const WORKLOAD_TABLE =
  "CREATE TABLE IF NOT EXISTS acked (id bigint PRIMARY KEY, client int)";

export interface WorkloadOptions {
  port: number;
  password: string;
  clients: number;
  /** Ids are client * 10^9 + n. */
  database?: string;
}

export class Workload {
  readonly acked = new Set<number>();
  /** Server errors: transactions that failed. */
  readonly failed: { id: number; error: string }[] = [];
  /** Ids whose connection was lost with the transaction in flight (then retried). */
  readonly inFlightLost: number[] = [];
  /** Commit times per client (performance.now()). */
  readonly commits: number[][] = [];
  #stop = false;
  #runs: Promise<void>[] = [];
  readonly #o: WorkloadOptions;

  constructor(o: WorkloadOptions) {
    this.#o = o;
  }

  start(): void {
    for (let c = 0; c < this.#o.clients; c++) {
      this.commits.push([]);
      this.#runs.push(this.#client(c));
    }
  }

  async #connect(): Promise<PgConnection> {
    for (;;) {
      try {
        return await PgConnection.connect({
          hostname: "127.0.0.1",
          port: this.#o.port,
          user: "postgres",
          database: this.#o.database ?? "postgres",
          password: this.#o.password,
          applicationName: "workload",
          timeoutMs: 60_000,
        });
      } catch {
        if (this.#stop) throw new Error("stopped");
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  async #client(c: number): Promise<void> {
    let conn: PgConnection | undefined;
    let n = 0;
    let retry: number | undefined;
    while (!this.#stop || retry !== undefined) {
      const id = retry ?? c * 1e9 + ++n;
      try {
        conn ??= await this.#connect();
      } catch {
        return;
      }
      try {
        await conn.query(
          `INSERT INTO acked VALUES (${id}, ${c}) ON CONFLICT (id) DO NOTHING`,
          120_000,
        );
        this.acked.add(id);
        this.commits[c]!.push(performance.now());
        retry = undefined;
      } catch (error) {
        if (error instanceof PgError && error.severity !== "FATAL" && !conn.closed) {
          this.failed.push({ id, error: error.message });
          retry = undefined;
          continue;
        }
        if (retry === undefined) this.inFlightLost.push(id);
        retry = id;
        conn.close();
        conn = undefined;
      }
    }
    conn?.close();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await Promise.all(this.#runs);
  }

  /** The longest gap between consecutive commits of each client within [from, to]. */
  stalls(from: number, to: number): number[] {
    return this.commits.map((times) => {
      let worst = 0;
      let prev = times.filter((t) => t < from).at(-1) ?? from;
      for (const t of times.filter((t) => t >= from)) {
        worst = Math.max(worst, t - prev);
        prev = t;
        if (t > to) break;
      }
      return worst;
    });
  }
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}
