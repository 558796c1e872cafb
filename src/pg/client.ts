/**
 * EFFECT: a small PostgreSQL client on Deno's own sockets, for the supervisor's work (post-start,
 * control commands, metrics, PgBouncer's admin console). It speaks the simple query protocol
 * only (text results; values reach SQL through quoteLiteral/quoteIdent), authenticates by peer
 * or SCRAM-SHA-256, and refuses cleartext and md5.
 *
 * Why not npm:postgres here: its Node compatibility layer costs ~10 MB of resident memory in
 * the supervisor (measured: 44–48 MB vs 34–35 MB for a process that only connects), and the
 * supervisor's budget is 60 MB in all. npm:postgres remains what the tests use as an app.
 */
import { ScramClient } from "../auth/scram.ts";
import {
  authCode,
  MessageReader,
  parseDataRow,
  parseFields,
  parseRowDescription,
  queryMessage,
  saslInitialResponse,
  saslResponse,
  startupMessage,
  terminateMessage,
  text,
} from "./protocol.ts";

export type Row = Record<string, string | null>;

export class PgError extends Error {
  readonly code: string;
  readonly severity: string;
  readonly detail: string | undefined;

  constructor(fields: Record<string, string>) {
    super(fields["M"] ?? "server error");
    this.name = "PgError";
    this.code = fields["C"] ?? "";
    this.severity = fields["S"] ?? fields["V"] ?? "ERROR";
    this.detail = fields["D"];
  }
}

export interface ConnectOptions {
  /** Unix socket file (…/.s.PGSQL.5433) or TCP host:port. */
  path?: string;
  hostname?: string;
  port?: number;
  user: string;
  database: string;
  password?: string;
  applicationName?: string;
  /** Extra startup parameters (e.g. statement_timeout). */
  options?: Record<string, string>;
  timeoutMs?: number;
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

export class PgConnection {
  readonly #conn: Deno.Conn;
  readonly #reader = new MessageReader();
  readonly #buf = new Uint8Array(64 * 1024);
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  static async connect(o: ConnectOptions): Promise<PgConnection> {
    const timeoutMs = o.timeoutMs ?? 5000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const conn = await Promise.race([
      o.path
        ? Deno.connect({ transport: "unix", path: o.path })
        : Deno.connect({ hostname: o.hostname ?? "127.0.0.1", port: o.port ?? 5432 }),
      new Promise<never>((
        _,
        reject,
      ) => (timer = setTimeout(
        () => reject(new Error(`connect timed out after ${timeoutMs} ms`)),
        timeoutMs,
      ))),
    ]).finally(() => clearTimeout(timer));
    const pg = new PgConnection(conn);
    try {
      await pg.#withTimeout(pg.#startup(o), timeoutMs, "startup");
    } catch (error) {
      pg.close();
      throw error;
    }
    return pg;
  }

  async #send(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  async #receive() {
    for (;;) {
      const msg = this.#reader.next();
      if (msg) return msg;
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("server closed the connection");
      this.#reader.push(this.#buf.subarray(0, n));
    }
  }

  async #startup(o: ConnectOptions): Promise<void> {
    await this.#send(startupMessage({
      user: o.user,
      database: o.database,
      application_name: o.applicationName ?? "beyond-pg",
      client_encoding: "UTF8",
      ...o.options,
    }));
    let scram: ScramClient | undefined;
    for (;;) {
      const msg = await this.#receive();
      if (msg.type === "E") throw new PgError(parseFields(msg.body));
      if (msg.type === "Z") return;
      if (msg.type !== "R") continue; // ParameterStatus, BackendKeyData, notices
      const code = authCode(msg.body);
      if (code === 0) continue;
      if (code === 10) {
        const mechanisms = text(msg.body.subarray(4)).split("\0").filter(Boolean);
        if (!mechanisms.includes("SCRAM-SHA-256")) {
          throw new Error(`no supported SASL mechanism (${mechanisms})`);
        }
        if (o.password === undefined) {
          throw new Error("the server asks for a password and none was given");
        }
        scram = new ScramClient(o.password);
        await this.#send(saslInitialResponse("SCRAM-SHA-256", scram.first()));
      } else if (code === 11 && scram) {
        await this.#send(saslResponse(await scram.final(text(msg.body.subarray(4)))));
      } else if (code === 12 && scram) {
        await scram.verify(text(msg.body.subarray(4)));
      } else {
        throw new Error(
          `refusing authentication method ${code} (only peer and SCRAM-SHA-256 are used)`,
        );
      }
    }
  }

  #withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      p,
      new Promise<never>((_, reject) =>
        timer = setTimeout(() => {
          this.close(); // the protocol state is unknown now; the connection is done
          reject(new Error(`${what} timed out after ${ms} ms`));
        }, ms)
      ),
    ]).finally(() => clearTimeout(timer));
  }

  /** Run SQL (one or more statements); the rows of each result, in order. */
  queryAll(sql: string, timeoutMs = 30_000): Promise<Row[][]> {
    const run = async () => {
      if (this.#closed) throw new Error("connection is closed");
      await this.#send(queryMessage(sql));
      const results: Row[][] = [];
      let columns: string[] = [];
      let rows: Row[] = [];
      let error: PgError | undefined;
      for (;;) {
        const msg = await this.#receive();
        switch (msg.type) {
          case "T":
            columns = parseRowDescription(msg.body);
            rows = [];
            break;
          case "D": {
            const values = parseDataRow(msg.body);
            const row: Row = {};
            columns.forEach((c, i) => (row[c] = values[i] ?? null));
            rows.push(row);
            break;
          }
          case "C":
          case "I":
            results.push(rows);
            columns = [];
            rows = [];
            break;
          case "E":
            error = new PgError(parseFields(msg.body));
            break;
          case "Z":
            if (error) throw error;
            return results;
        }
      }
    };
    // One query at a time per connection.
    const next = this.#busy.then(() => this.#withTimeout(run(), timeoutMs, "query"));
    this.#busy = next.catch(() => {});
    return next;
  }

  /** Rows of the last statement. */
  async query(sql: string, timeoutMs?: number): Promise<Row[]> {
    return (await this.queryAll(sql, timeoutMs)).at(-1) ?? [];
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#send(terminateMessage()).catch(() => {}).finally(() => {
      try {
        this.#conn.close();
      } catch { /* closed */ }
    });
  }
}
