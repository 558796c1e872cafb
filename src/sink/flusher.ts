/**
 * EFFECT: with `BEYOND_PG_SINK_ACK=write`, pg_receivewal runs with libeatmydata preloaded (its
 * fsync a no-op) and reports WAL as soon as it has written it, the promise
 * `synchronous_commit = remote_write` asks of a standby. This puts that WAL on the sink's disk
 * shortly after: every round (200 ms, as postgres's wal_writer_delay) fdatasyncs the `.partial`
 * and each complete segment not synced yet, then the directory when names changed (a finished
 * segment's rename). A sink host that crashes loses at most the last round; the primary's host
 * failing — what the sink is for — loses nothing either way.
 */
import type { RootTree } from "../fs/tree.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export const FLUSH_EVERY_MS = 200;

/**
 * With BEYOND_PG_SINK_ACK=write: the primary's default synchronous_commit, judged. `on` and
 * `remote_apply` promise WAL on the standby's disk, which this sink reports before it is.
 */
export function levelWarningFor(level: string): string | undefined {
  if (level !== "on" && level !== "remote_apply") return undefined;
  return `the primary's synchronous_commit is ${level} but this sink acknowledges on write (BEYOND_PG_SINK_ACK=write): set BEYOND_PG_SINK_ACK=flush here, or BEYOND_PG_SYNC_COMMIT=remote_write on the primary`;
}

/** What the flusher needs of the sink's directory: its WAL files (SinkStore.files). */
export interface WalFiles {
  files(): { name: string; partial: boolean }[];
}

export class Flusher {
  readonly #tree: RootTree;
  readonly #dir: string;
  readonly #wal: WalFiles;
  readonly #end: () => bigint | undefined;
  /** Complete segments already synced. */
  #synced = new Set<string>();
  #names = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The round in progress, if any. */
  #running: Promise<void> | undefined;
  #warned = false;
  /** The WAL end seen before the last complete round began: everything up to it is on disk. */
  flushed: bigint | undefined;
  rounds = 0;

  constructor(tree: RootTree, dir: string, wal: WalFiles, end: () => bigint | undefined) {
    this.#tree = tree;
    this.#dir = dir;
    this.#wal = wal;
    this.#end = end;
  }

  start(everyMs = FLUSH_EVERY_MS): void {
    this.#timer = setInterval(() => void this.round(), everyMs);
  }

  /** One round; a round still running is not overlapped (this waits for it instead). */
  round(): Promise<void> {
    this.#running ??= this.#round().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async #round(): Promise<void> {
    const mark = this.#end();
    try {
      const files = this.#wal.files();
      for (const { name, partial } of files) {
        if (!partial && this.#synced.has(name)) continue;
        let f: Deno.FsFile;
        try {
          f = this.#tree.open(`${this.#dir}/${name}${partial ? ".partial" : ""}`, { read: true });
        } catch {
          continue; // renamed or removed meanwhile: the next round sees its new name
        }
        try {
          await f.syncData();
        } finally {
          f.close();
        }
        if (!partial) this.#synced.add(name);
      }
      const joined = files.map((f) => `${f.name}${f.partial ? ".partial" : ""}`).join("\n");
      if (joined !== this.#names) {
        this.#tree.syncDir(this.#dir);
        this.#names = joined;
        const present = new Set(files.map((f) => f.name));
        for (const n of this.#synced) if (!present.has(n)) this.#synced.delete(n);
      }
      this.flushed = mark;
      this.rounds++;
      this.#warned = false;
    } catch (error) {
      if (!this.#warned) log.warn(`wal-sink: fsync of ${this.#dir}: ${errorMessage(error)}`);
      this.#warned = true;
    }
  }

  /** Stop, after one last round (what pg_receivewal wrote before it stopped is on disk). */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
    await this.round();
  }
}
