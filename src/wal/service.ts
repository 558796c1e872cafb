/**
 * EFFECT: the supervisor's archive service. postgres archives one file at a time, calling
 * archive_command for the oldest `.ready` file and waiting; over S3 that caps throughput at
 * one round trip per 16 MiB. So, like CloudNativePG and WAL-G, the service watches
 * `pg_wal/archive_status/*.ready` and uploads ready files ahead of the request, `parallel` at
 * a time, over one pooled client; `beyond-pg archive` (run by postgres) asks over a local
 * socket and is answered from what is already stored.
 *
 * The same socket serves `restore` during recovery (spool.ts).
 *
 * Nothing here decides that a file is archived except a completed, verified PUT (or an
 * identical object already there): postgres only marks a file done when `archive` exits 0.
 */
import {
  ArchiveError,
  archivePrepared,
  type ArchiveResult,
  checkOwner,
  clientFor,
  lineageOf,
  type OwnerCheck,
  readOwner,
  WAL_ATTEMPTS,
  writeOwner,
} from "./archive.ts";
import { historyName, parseHistory } from "./lineage.ts";
import { LineageGate } from "./lineage_gate.ts";
import type { ArchiveConfig } from "./config.ts";
import type { Owner } from "../fs/identity.ts";
import type { PgTree, RootTree } from "../fs/tree.ts";
import {
  externalToolsAvailable,
  type Prepared,
  prepareExternal,
  prepareInline,
  prepareSegmentByTool,
  readWalFile,
} from "./prepare.ts";
import { formatLsn, parseSegment, SEGMENT_BYTES, segmentName, walKind } from "./names.ts";
import { runsToSegmentEnd } from "./reader.ts";
import { MAX_TEXT_FILE, WAL_MAGIC } from "./validate.ts";
import { readOwnedFile } from "../fs/handover.ts";
import { RestoreSpool } from "./spool.ts";
import { sealPrepared } from "./keys.ts";
import { S3Error } from "../s3/client.ts";
import type { ObjectStore } from "../s3/store.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";

export interface ServiceOptions {
  cfg: ArchiveConfig;
  /** Where objects go (default: the S3 client for `cfg`; unit tests pass a MemoryStore). */
  store?: ObjectStore;
  /** Retry a failed upload ahead of postgres's own request after this long (default 5 s). */
  retryMs?: number;
  /** pg_wal (archive_status is inside), read as postgres (`data`). */
  walDir: string;
  /** The data root (postgres's): pg_wal and the restore spool are read and written in it. */
  data: PgTree;
  /** Restored files wait here for `restore-wal` to rename them into pg_wal (same volume). */
  spoolDir: string;
  /**
   * An empty file per stored name, which archive_command's shell test finds (wal/config.ts
   * archiveCommandFor): postgres's one-at-a-time loop then costs a `test`, not a process of
   * ours; and `<name>.up` while its upload runs, which the shell waits on. Root's: postgres can
   * neither plant one nor remove one.
   */
  done?: RootTree;
  /** The postgres user, when we run as someone else (what we read must be its). */
  owner?: Owner;
  /** Warn when this many files wait to be archived. */
  backlogWarn?: number;
  scanMs?: number;
  /** Segments fetched ahead during recovery. */
  prefetch?: number;
  /** The timeline of this cluster at start (pg_control): a new owner record gets it. */
  localTimeline?: number;
  /** This cluster takes the prefix's lineage over when it is on a newer timeline. */
  promote?: boolean;
  /**
   * Called when uploads work again after failures. postgres's archiver waits a minute after
   * three failed attempts; the supervisor wakes it so the backlog drains at once.
   */
  onRecovered?: () => void;
}

export interface ArchiveStats {
  backlog: number;
  archivedTotal: number;
  alreadyStoredTotal: number;
  failedTotal: number;
  bytesTotal: number;
  storedBytesTotal: number;
  restoredTotal: number;
  prefetchHitsTotal: number;
  lastArchived: string;
  lastArchivedAt: number;
  lastError: string;
  /** The oldest ready file not stored yet (postgres's order), "" when none. */
  firstUncovered: string;
}

/**
 * Beside a name's done marker while its upload runs (`<name>.up`): archive_command's shell
 * waits on it instead of starting a process of ours that would only wait too (wal/config.ts).
 */
export const UPLOADING = ".up";

/** No file stored for this long while some wait: the store is too slow or hung. */
const STALL_MS = 5 * 60_000;

export class ArchiveService {
  readonly cfg: ArchiveConfig;
  readonly client: ObjectStore;
  readonly #o:
    & Required<Omit<ServiceOptions, "owner" | "onRecovered" | "done" | "store" | "retryMs">>
    & Pick<ServiceOptions, "owner" | "onRecovered" | "done">
    & { retryMs: number };
  readonly lineage: LineageGate;
  #failing = false;
  /** name → when its upload completed (kept while its .ready exists, plus a minute). */
  readonly #stored = new Map<string, number>();
  /** Ready and not stored at the last scan, less what we stored since (the backlog gauge). */
  #waiting = new Set<string>();
  readonly #inflight = new Map<string, Promise<ArchiveResult>>();
  /** name → earliest time to retry ahead of a request, after a failure. */
  readonly #retryAt = new Map<string, number>();
  readonly #queue: string[] = [];
  /** Files postgres marks for nobody that the archive needs (afterPromotion), until stored. */
  readonly #extra = new Set<string>();
  readonly #refused = new Set<string>();
  readonly #startedAt = Date.now();
  #active = 0;
  #ownerChecked: Promise<OwnerCheck> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #scanning = false;
  #closed = false;
  #lastWarn = 0;
  #warned = false;
  readonly #spool: RestoreSpool;
  readonly stats: ArchiveStats = {
    backlog: 0,
    archivedTotal: 0,
    alreadyStoredTotal: 0,
    failedTotal: 0,
    bytesTotal: 0,
    storedBytesTotal: 0,
    restoredTotal: 0,
    prefetchHitsTotal: 0,
    lastArchived: "",
    lastArchivedAt: 0,
    lastError: "",
    firstUncovered: "",
  };

  constructor(o: ServiceOptions) {
    this.cfg = o.cfg;
    this.client = o.store ?? clientFor(o.cfg, { attempts: WAL_ATTEMPTS });
    this.#o = {
      backlogWarn: 64,
      scanMs: 1000,
      prefetch: 8,
      localTimeline: 1,
      promote: false,
      ...o,
      retryMs: o.retryMs ?? 5000,
    };
    const client = this.client;
    const cfg = o.cfg;
    this.lineage = new LineageGate({
      readOwner: () => readOwner(client, cfg.target),
      writeOwner: (rec) => writeOwner(client, cfg.target, rec),
      lineageOf: (t) => lineageOf(client, cfg, t),
      localHistory: (t) => this.#localHistory(t),
      now: () => Date.now(),
    }, { promote: this.#o.promote });
    this.#spool = new RestoreSpool({
      cfg: o.cfg,
      client: this.client,
      data: o.data,
      dir: o.spoolDir,
      prefetch: this.#o.prefetch,
      stats: this.stats,
    });
    if (o.done) {
      // Markers of an earlier run may be stale: start empty.
      o.done.remove(o.done.base);
      o.done.create(0o755);
    }
  }

  /**
   * Claim the prefix (or learn that another cluster owns it: thrown, not retried). An
   * unreachable store is not fatal here: uploads retry, and postgres keeps its WAL meanwhile.
   */
  async checkOwner(): Promise<OwnerCheck> {
    try {
      return await (this.#ownerChecked ??= checkOwner(
        this.client,
        this.cfg,
        this.#o.localTimeline,
      ));
    } catch (error) {
      this.#ownerChecked = undefined;
      if (error instanceof S3Error) throw new ArchiveError(error.message, error.transient, error);
      throw error;
    }
  }

  start(): void {
    // A promotion before this start (this supervisor died right after it, or postgres was
    // promoted by hand) is looked at once here; the promote command calls it again.
    if (this.#o.localTimeline > 1) void this.afterPromotion(this.#o.localTimeline);
    this.#timer = setInterval(() => this.scan(), this.#o.scanMs);
    this.scan();
  }

  /**
   * This cluster is on `timeline` after a promotion. When the timeline it came from ended
   * exactly at a segment boundary (the old primary died right after a segment switch, before
   * this standby had all of the switch's padding), postgres marks that timeline's last segment
   * for nobody: the walreceiver never finished the file, and the end of recovery renames the
   * last segment to `.partial` (and archives that) only when the switch is inside it. Its WAL is
   * all there, up to the switch record; without it the archive has a hole until a checkpoint
   * long after notices the file. It is stored from here (the name), or undefined when there is
   * nothing to do.
   */
  async afterPromotion(timeline: number): Promise<string | undefined> {
    const { data, walDir } = this.#o;
    const parent = parseHistory(await this.#localHistory(timeline) ?? "").at(-1);
    const seg = BigInt(SEGMENT_BYTES);
    if (!parent || parent.end === 0n || parent.end % seg !== 0n) return undefined;
    const name = segmentName({ timeline: parent.timeline, number: parent.end / seg - 1n });
    const status = `${walDir}/archive_status/${name}`;
    if (!data.stat(`${walDir}/${name}`)?.isFile) return undefined;
    if (data.exists(`${status}.ready`) || data.exists(`${status}.done`)) return undefined;
    if (!this.#extra.has(name)) {
      this.#extra.add(name);
      log.info(
        `archive: storing ${name}, the last segment of timeline ${parent.timeline}: it ended at ${
          formatLsn(parent.end)
        }, a segment boundary, and postgres marks that file for nobody after a promotion`,
      );
    }
    this.scan();
    return name;
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.client.close?.();
  }

  // ---- archiving ------------------------------------------------------------------------

  /** Names of the files postgres has marked ready for archiving (and #extra), oldest first. */
  #ready(): string[] {
    const out: string[] = [];
    try {
      for (const e of this.#o.data.list(`${this.#o.walDir}/archive_status`)) {
        if (e.name.endsWith(".ready") && walKind(e.name.slice(0, -6))) {
          out.push(e.name.slice(0, -6));
        }
      }
    } catch { /* no pg_wal yet */ }
    for (const name of this.#extra) {
      if (!this.#o.data.stat(`${this.#o.walDir}/${name}`)?.isFile) this.#extra.delete(name);
      else if (!out.includes(name)) out.push(name);
    }
    // Timeline history first (postgres does the same), then in WAL order.
    return out.sort((a, b) =>
      Number(walKind(b) === "history") - Number(walKind(a) === "history") || (a < b ? -1 : 1)
    );
  }

  /** Queue ready files we have not stored yet, and forget stored ones postgres is done with. */
  scan(): void {
    if (this.#closed || this.#scanning) return;
    this.#scanning = true;
    try {
      const ready = this.#ready();
      const readySet = new Set(ready);
      const now = Date.now();
      for (const [name, at] of this.#stored) {
        if (!readySet.has(name) && now - at > 60_000) this.#stored.delete(name);
      }
      const done = this.#o.done;
      if (done) {
        // A marker whose file is no longer ready has done its job (or was not needed): never
        // leave one that could answer for a later file of the same name.
        for (const e of done.list(done.base)) {
          const file = e.name.endsWith(UPLOADING) ? e.name.slice(0, -UPLOADING.length) : e.name;
          if (!readySet.has(file) && !this.#inflight.has(file)) {
            done.remove(`${done.base}/${e.name}`, false);
          }
        }
      }
      for (const name of this.#retryAt.keys()) {
        if (!readySet.has(name)) this.#retryAt.delete(name);
      }
      this.#waiting = new Set(ready.filter((n) => !this.#stored.has(n)));
      this.#gauge();
      this.#warnBacklog();
      const queued = new Set(this.#queue);
      for (const name of ready) {
        if (this.#stored.has(name) || this.#inflight.has(name) || queued.has(name)) continue;
        if ((this.#retryAt.get(name) ?? 0) > now) continue;
        this.#queue.push(name);
      }
      this.#pump();
    } finally {
      this.#scanning = false;
    }
  }

  /** The backlog gauge and the oldest file waiting (the set keeps postgres's order). */
  #gauge(): void {
    this.stats.backlog = this.#waiting.size;
    this.stats.firstUncovered = this.#waiting.values().next().value ?? "";
  }

  /**
   * A warning line, at most once a minute, while WAL waits: many files, or any file and no
   * success for five minutes (a slow or hung store stores nothing, whatever the count).
   */
  #warnBacklog(): void {
    const { backlog } = this.stats;
    const now = Date.now();
    const since = Math.max(this.stats.lastArchivedAt, this.#startedAt);
    const stalled = backlog > 0 && now - since > STALL_MS;
    if (backlog >= this.#o.backlogWarn || stalled) {
      if (now - this.#lastWarn > 60_000) {
        this.#lastWarn = now;
        this.#warned = true;
        const last = this.stats.lastArchivedAt
          ? `the last file was stored ${Math.round((now - this.stats.lastArchivedAt) / 1000)} s ago`
          : "nothing stored since start";
        log.warn(
          `archive backlog: ${backlog} WAL files wait to be archived to ${this.cfg.target} (${last}${
            this.stats.lastError ? `; last error: ${this.stats.lastError}` : ""
          }); pg_wal grows until they are stored`,
        );
      }
    } else if (this.#warned && backlog < this.#o.backlogWarn / 2) {
      this.#warned = false;
      log.info(`archive backlog down to ${backlog}`);
    }
  }

  #pump(): void {
    while (this.#active < this.cfg.parallel && this.#queue.length && !this.#closed) {
      const name = this.#queue.shift()!;
      if (this.#stored.has(name) || this.#inflight.has(name)) continue;
      this.#upload(name).catch(() => {}); // recorded in stats; the request path reports it
    }
  }

  #upload(name: string): Promise<ArchiveResult> {
    const existing = this.#inflight.get(name);
    if (existing) return existing;
    this.#active++;
    const task = (async () => {
      try {
        const owner = await this.checkOwner();
        const decision = await this.lineage.decide(name);
        if (decision.action === "skip") {
          // Not this prefix's lineage (a branch): answered as done, never stored.
          this.#stored.set(name, Date.now());
          this.#extra.delete(name);
          this.#waiting.delete(name);
          this.#gauge();
          this.#markDone(name);
          return { name, stored: false, bytes: 0, storedBytes: 0, skipped: decision.reason };
        }
        if (decision.action === "refuse") throw new ArchiveError(decision.reason, false);
        this.#mark(name + UPLOADING);
        const path = `${this.#o.walDir}/${name}`;
        const read = () =>
          readWalFile(path, name, { major: this.cfg.major, sysid: this.cfg.sysid }, this.#o.owner);
        const expect = { major: this.cfg.major, sysid: this.cfg.sysid };
        if (this.#extra.has(name) && !this.#runsToEnd(name, await read())) {
          // Never store a copy that lacks WAL: a complete one could not be stored after it.
          const reason = "its WAL stops before the segment's end (this copy is incomplete)";
          this.#extra.delete(name);
          this.#waiting.delete(name);
          this.#gauge();
          log.warn(`archive: not storing ${name}: ${reason}`);
          return { name, stored: false, bytes: 0, storedBytes: 0, skipped: reason };
        }
        const prepared = await sealPrepared(
          this.cfg,
          await prepareSegmentByTool(path, name, {
            codec: this.cfg.codec,
            expect,
            owner: this.#o.owner,
          }) ?? await this.#prepareRead(path, name, await read()),
        );
        const result = await archivePrepared(this.client, this.cfg, prepared, read, owner);
        this.#stored.set(name, Date.now());
        this.#extra.delete(name);
        this.#waiting.delete(name);
        this.#gauge();
        this.#markDone(name);
        this.#retryAt.delete(name);
        if (result.stored) this.stats.archivedTotal++;
        else this.stats.alreadyStoredTotal++;
        this.stats.bytesTotal += result.bytes;
        this.stats.storedBytesTotal += result.storedBytes;
        this.stats.lastArchived = name;
        this.stats.lastArchivedAt = Date.now();
        this.stats.lastError = "";
        if (this.#failing) {
          this.#failing = false;
          log.info(`archive: storing works again (${name}); draining the backlog`);
          this.#o.onRecovered?.();
        }
        return result;
      } catch (error) {
        this.stats.failedTotal++;
        this.stats.lastError = errorMessage(error);
        // A refusal (a planted link, a file of another cluster) is said once per file.
        if (error instanceof ArchiveError && !error.transient && !this.#refused.has(name)) {
          this.#refused.add(name);
          log.error(`archive: ${this.stats.lastError}`);
        }
        this.#failing = true;
        // Ahead-of-request retries back off; postgres's own retries come through archive().
        this.#retryAt.set(name, Date.now() + this.#o.retryMs);
        throw error;
      } finally {
        this.#unmark(name + UPLOADING);
        this.#inflight.delete(name);
        this.#active--;
        this.#pump();
      }
    })();
    this.#inflight.set(name, task);
    return task;
  }

  /**
   * pg_wal's history file of `timeline`, read as a file postgres produced (no link followed,
   * no FIFO opened, a size cap); undefined when there is none or it is not a plain file.
   */
  async #localHistory(timeline: number): Promise<string | undefined> {
    const path = `${this.#o.walDir}/${historyName(timeline)}`;
    try {
      return new TextDecoder().decode(await readOwnedFile(path, this.#o.owner, MAX_TEXT_FILE));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        log.warn(`archive: not reading ${path}: ${errorMessage(error)}`);
      }
      return undefined;
    }
  }

  /** Does this copy of segment `name` hold WAL up to the segment's end (reader.ts)? */
  #runsToEnd(name: string, bytes: Uint8Array): boolean {
    const id = parseSegment(name);
    const magic = WAL_MAGIC[this.cfg.major];
    return id !== undefined && magic !== undefined && runsToSegmentEnd(bytes, id.number, {
      format: { magic, segmentBytes: SEGMENT_BYTES },
      timeline: id.timeline,
      sysid: BigInt(this.cfg.sysid),
      crc: false, // lengths, links and pages: ~80 ms a segment without a JIT, not ~1.4 s
    });
  }

  async #prepareRead(path: string, name: string, data: Uint8Array): Promise<Prepared> {
    return await externalToolsAvailable()
      ? await prepareExternal(path, name, data, this.cfg.codec)
      : await prepareInline(path, name, data, this.cfg.codec);
  }

  #markDone(name: string): void {
    this.#mark(name);
  }

  #mark(marker: string): void {
    const done = this.#o.done;
    if (!done || this.#closed) return;
    try {
      done.createOnce(`${done.base}/${marker}`, "", 0o644);
    } catch (error) {
      log.debug(`archive: cannot write the marker ${marker}: ${errorMessage(error)}`);
    }
  }

  #unmark(marker: string): void {
    const done = this.#o.done;
    if (!done) return;
    try {
      done.remove(`${done.base}/${marker}`, false);
    } catch (error) {
      log.debug(`archive: cannot remove the marker ${marker}: ${errorMessage(error)}`);
    }
  }

  /** archive_command's request: resolves once `name` is stored; rejects with the reason. */
  async archive(name: string): Promise<{ name: string; uploadedNow: boolean }> {
    if (!walKind(name)) {
      throw new ArchiveError(`${JSON.stringify(name)} is not a WAL file name`, false);
    }
    if (this.#stored.has(name)) return { name, uploadedNow: false };
    const pending = this.#inflight.get(name);
    if (pending) {
      await pending;
      return { name, uploadedNow: false };
    }
    // Not seen yet: start it now, and look for what else became ready meanwhile.
    const task = this.#upload(name);
    queueMicrotask(() => this.scan());
    await task;
    return { name, uploadedNow: true };
  }

  /**
   * restore_command's request: where the file now is (restore-wal renames it into place), or
   * found: false. Prefetches the segments that follow.
   */
  restore(name: string): Promise<{ found: boolean; file?: string }> {
    return this.#spool.restore(name);
  }
}
