/**
 * EFFECT (through injected calls): the archive service's lineage check for each WAL file.
 * Keeps the prefix's owner lineage (its record's timeline and that timeline's history),
 * refreshed every minute so an old primary learns it was taken over; decides per file
 * (lineage.ts); and, when this cluster is the new primary (told so), moves the owner record
 * to its timeline before the first file of it is stored.
 */
import { decide, type Decision, type Lineage, parseHistory } from "./lineage.ts";
import type { OwnerRecord } from "./archive.ts";
import { log } from "../util/log.ts";

export interface LineagePorts {
  readOwner(): Promise<OwnerRecord | undefined>;
  writeOwner(rec: OwnerRecord): Promise<void>;
  /** The archive's lineage of `timeline` (its stored history file). */
  lineageOf(timeline: number): Promise<Lineage>;
  /**
   * This cluster's own history file of `timeline` (pg_wal), or undefined. Read as a file
   * postgres produced (no link followed, no FIFO opened): async.
   */
  localHistory(timeline: number): Promise<string | undefined>;
  now(): number;
}

export interface LineageState {
  /** The prefix's primary timeline. */
  ownerTimeline: number;
  /** What this cluster is to the prefix, from the last decisions. */
  role: "primary" | "branch" | "fenced";
  reason?: string;
  skippedTotal: number;
}

const REFRESH_MS = 60_000;
/** A skip is re-checked against the store when the cached lineage is older than this. */
const SKIP_RECHECK_MS = 5_000;

export class LineageGate {
  readonly #ports: LineagePorts;
  #promote: boolean;
  #lineage: Lineage | undefined;
  #loadedAt = 0;
  #loading: Promise<Lineage> | undefined;
  readonly state: LineageState = { ownerTimeline: 0, role: "primary", skippedTotal: 0 };
  #lastSkipLog = Number.NEGATIVE_INFINITY;

  constructor(ports: LineagePorts, o: { promote: boolean }) {
    this.#ports = ports;
    this.#promote = o.promote;
  }

  async #current(): Promise<Lineage> {
    if (this.#lineage && this.#ports.now() - this.#loadedAt < REFRESH_MS) return this.#lineage;
    this.#loading ??= (async () => {
      const rec = await this.#ports.readOwner();
      const lineage = await this.#ports.lineageOf(rec?.timeline ?? 1);
      this.#lineage = lineage;
      this.#loadedAt = this.#ports.now();
      this.state.ownerTimeline = lineage.timeline;
      return lineage;
    })().finally(() => (this.#loading = undefined));
    return await this.#loading;
  }

  /** What to do with `name` now; a promotion is carried out here (the record moves first). */
  async decide(name: string): Promise<Decision> {
    let owner = await this.#current();
    // Our own history of the file's timeline, when it is newer than the owner's: does it
    // descend from the owner's timeline? (Read first: decide() is pure and synchronous.)
    const timeline = parseInt(name.slice(0, 8), 16);
    const history = timeline > owner.timeline
      ? parseHistory(await this.#ports.localHistory(timeline) ?? "")
      : undefined;
    const descends = (t: number) =>
      t === timeline && !!history?.some((e) => e.timeline === owner.timeline);
    let d = decide(name, owner, { promote: this.#promote, descends });
    if (d.action === "skip" && this.#ports.now() - this.#loadedAt > SKIP_RECHECK_MS) {
      // A newer timeline may have become the owner's since the last look (a replica that
      // follows a promoted primary archives its WAL too): look again before calling it a branch.
      this.#lineage = undefined;
      owner = await this.#current();
      d = decide(name, owner, { promote: this.#promote, descends });
    }
    if (d.action === "promote") {
      const rec = await this.#ports.readOwner();
      if (rec && rec.timeline !== undefined && rec.timeline > owner.timeline) {
        // Someone else moved it meanwhile: decide again on what is there now.
        this.#lineage = undefined;
        return await this.decide(name);
      }
      await this.#ports.writeOwner({ ...rec!, timeline: d.timeline });
      // Our own history says where we branched (the archive gets it right after this).
      owner = {
        timeline: d.timeline,
        ancestors: parseHistory(await this.#ports.localHistory(d.timeline) ?? ""),
      };
      this.#lineage = owner;
      this.#loadedAt = this.#ports.now();
      this.state.ownerTimeline = d.timeline;
      log.info(
        `archive: this cluster is now the primary of its prefix (timeline ${d.timeline}); restore --latest follows it`,
      );
      this.state.role = "primary";
      delete this.state.reason;
      return { action: "archive" };
    }
    if (d.action === "archive") {
      if (this.state.role !== "primary") {
        this.state.role = "primary";
        delete this.state.reason;
      }
    } else {
      this.state.role = d.action === "skip" ? "branch" : "fenced";
      this.state.reason = d.reason;
      // A refusal is reported by the service (once per file); a skip is answered as done.
      if (d.action === "skip") {
        this.state.skippedTotal++;
        if (this.#ports.now() - this.#lastSkipLog > 60_000) {
          this.#lastSkipLog = this.#ports.now();
          log.warn(
            `archive: not storing ${name}: ${d.reason}; set BEYOND_PG_ARCHIVE_PROMOTE=true (or restore --promote-as-primary) to make this cluster the primary, or point BEYOND_PG_ARCHIVE_TARGET at a prefix of its own`,
          );
        }
      }
    }
    return d;
  }

  /** From now on this cluster may take the prefix's lineage over (the `promote` command). */
  allowPromote(): void {
    this.#promote = true;
  }

  /** Forget the cached lineage (a promotion happened here). */
  invalidate(): void {
    this.#lineage = undefined;
  }
}
