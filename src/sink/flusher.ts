/**
 * EFFECT: with `BEYOND_PG_SINK_ACK=write`, pg_receivewal runs with libeatmydata preloaded (its
 * fsync a no-op) and reports WAL as soon as it has written it, the promise
 * `synchronous_commit = remote_write` asks of a standby. This puts that WAL on the sink's disk shortly after: every round (200 ms, as postgres's wal_writer_delay) fdatasyncs
 * the `.partial` and each complete segment not synced yet, then the directory when names
 * changed (a finished segment's rename). A sink host that crashes loses at most the last
 * round; the primary's host failing — what the sink is for — loses nothing either way.
 */
import type { RootTree } from "../fs/tree.ts";
import { walKind } from "../wal/names.ts";
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

export class Flusher {
  readonly #tree: RootTree;
  readonly #dir: string;
  readonly #end: () => bigint | undefined;
  /** Complete segments already synced. */
  #synced = new Set<string>();
  #names = "";
  #timer: ReturnType<typeof setInterval> | undefined;
  #busy = false;
  #warned = false;
  /** The WAL end seen before the last complete round began: everything up to it is on disk. */
  flushed: bigint | undefined;
  rounds = 0;

  constructor(tree: RootTree, dir: string, end: () => bigint | undefined) {
    this.#tree = tree;
    this.#dir = dir;
    this.#end = end;
  }

  start(everyMs = FLUSH_EVERY_MS): void {
    this.#timer = setInterval(() => void this.round(), everyMs);
  }

  /** One round; a round still running is not overlapped. */
  async round(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    const mark = this.#end();
    try {
      const names = this.#tree.list(this.#dir)
        .filter((e) => e.isFile)
        .map((e) => e.name)
        .filter((n) => walKind(n) === "segment" || walKind(n) === "partial")
        .sort();
      for (const name of names) {
        const partial = name.endsWith(".partial");
        if (!partial && this.#synced.has(name)) continue;
        let f: Deno.FsFile;
        try {
          f = this.#tree.open(`${this.#dir}/${name}`, { read: true });
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
      const joined = names.join("\n");
      if (joined !== this.#names) {
        this.#tree.syncDir(this.#dir);
        this.#names = joined;
        const present = new Set(names);
        for (const n of this.#synced) if (!present.has(n)) this.#synced.delete(n);
      }
      this.flushed = mark;
      this.rounds++;
      this.#warned = false;
    } catch (error) {
      if (!this.#warned) log.warn(`wal-sink: fsync of ${this.#dir}: ${errorMessage(error)}`);
      this.#warned = true;
    } finally {
      this.#busy = false;
    }
  }

  /** Stop, after one last round (what pg_receivewal wrote before it stopped is on disk). */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    while (this.#busy) await new Promise((r) => setTimeout(r, 5));
    await this.round();
  }
}
