/**
 * PURE: is this boot a fork's first, and what may a fork do. A fork is a crash-consistent copy
 * of a volume, booted as a new database: it has the parent's system identifier, its archive
 * marker, its replication slots and its certificate. It learns it is a fork from metadata:
 *
 *   - BEYOND_PG_VOLUME_ID differs from the volume id recorded under PGDATA (beyond/volume.json)
 *     at the last boot: a fork of the recorded volume (the platform sets the id on every boot);
 *   - BEYOND_PG_FORK_OF names a parent this data was not yet booted as a fork of.
 *
 * On its first boot a fork switches archiving off (WAL recycles; never into the parent's
 * prefix: targets the parent archived to are remembered and refused on every later boot), drops
 * the replication slots it inherited (they would pin WAL forever) and renews a self-signed
 * certificate whose names differ.
 */

/** PGDATA/beyond/volume.json: forks and travels with the data. */
export interface VolumeRecord {
  /** The volume id this data was last booted as (BEYOND_PG_VOLUME_ID), when one was given. */
  volumeId?: string;
  /** This data is a fork of that volume. */
  forkOf?: string;
  /** When the fork first booted (ISO time). */
  forkedAt?: string;
  /** Archive targets of the parent (and its ancestors): never archived to from this volume. */
  parentTargets?: string[];
  /** Inherited replication slots still to be dropped (set at the fork's first boot). */
  dropSlots?: boolean;
}

export interface ForkInput {
  /** The record as found (undefined: none, e.g. data older than this record). */
  recorded: VolumeRecord | undefined;
  /** PGDATA held a cluster before this boot (else this is a first boot). */
  dataExisted: boolean;
  volumeId: string | undefined;
  forkOf: string | undefined;
  /** The target the parent archived to (its archive marker), when it did. */
  parentTarget: string | undefined;
  now: Date;
}

export interface ForkDecision {
  /** This boot is the fork's first: switch archiving off, drop slots, check the certificate. */
  fresh: boolean;
  /** The record to keep (written when it differs from the one found). */
  record: VolumeRecord;
  /** One line each, logged as warnings. */
  warnings: string[];
  /** Set when nothing may start: one line naming the fix. */
  problem?: string;
}

export function decideFork(i: ForkInput): ForkDecision {
  if (i.volumeId !== undefined && i.volumeId === i.forkOf) {
    return {
      fresh: false,
      record: i.recorded ?? {},
      warnings: [],
      problem:
        `BEYOND_PG_FORK_OF and BEYOND_PG_VOLUME_ID are both ${i.volumeId}; a fork has its own volume id: set BEYOND_PG_VOLUME_ID to the fork's`,
    };
  }
  if (!i.dataExisted) {
    return {
      fresh: false,
      record: i.volumeId !== undefined ? { volumeId: i.volumeId } : {},
      warnings: i.forkOf !== undefined
        ? [
          `BEYOND_PG_FORK_OF=${i.forkOf} is set, but the volume holds no cluster: this is a new database, not a fork (the copy of the parent's volume is missing)`,
        ]
        : [],
    };
  }
  const recorded = i.recorded ?? {};
  const idChanged = i.volumeId !== undefined && recorded.volumeId !== undefined &&
    i.volumeId !== recorded.volumeId;
  const newParent = i.forkOf !== undefined && recorded.forkOf !== i.forkOf;
  if (!idChanged && !newParent) {
    const record = { ...recorded, ...(i.volumeId !== undefined ? { volumeId: i.volumeId } : {}) };
    return { fresh: false, record, warnings: [] };
  }
  const parent = i.forkOf ?? recorded.volumeId!;
  const warnings: string[] = [];
  if (idChanged && i.forkOf !== undefined && i.forkOf !== recorded.volumeId) {
    warnings.push(
      `fork: BEYOND_PG_FORK_OF=${i.forkOf}, but this data was last booted as volume ${recorded.volumeId}; treating it as a fork of ${i.forkOf}`,
    );
  }
  const parentTargets = [
    ...new Set([
      ...(recorded.parentTargets ?? []),
      ...(i.parentTarget !== undefined ? [normalizeTarget(i.parentTarget)] : []),
    ]),
  ];
  return {
    fresh: true,
    record: {
      ...(i.volumeId !== undefined ? { volumeId: i.volumeId } : {}),
      forkOf: parent,
      forkedAt: i.now.toISOString(),
      ...(parentTargets.length ? { parentTargets } : {}),
      dropSlots: true,
    },
    warnings,
  };
}

/**
 * The record as read from PGDATA (postgres can write it: only well-formed fields are kept;
 * anything else reads as no record, the safe side — not a fork).
 */
export function parseRecord(text: string): VolumeRecord | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const o = v as Record<string, unknown>;
  const str = (x: unknown) => typeof x === "string" && x.length <= 1024 ? x : undefined;
  const targets = Array.isArray(o["parentTargets"])
    ? o["parentTargets"].map(str).filter((t): t is string => t !== undefined)
    : [];
  const r: VolumeRecord = {};
  if (str(o["volumeId"])) r.volumeId = str(o["volumeId"]);
  if (str(o["forkOf"])) r.forkOf = str(o["forkOf"]);
  if (str(o["forkedAt"])) r.forkedAt = str(o["forkedAt"]);
  if (targets.length) r.parentTargets = targets;
  if (o["dropSlots"] === true) r.dropSlots = true;
  return r;
}

/** `s3://bucket/prefix` without trailing slashes (how targets are compared). */
export function normalizeTarget(url: string): string {
  return url.replace(/\/+$/, "");
}

/**
 * May this volume archive to `target` now? Never to a prefix a parent archived to (a fork has
 * the parent's system identifier: the owner record's guard alone cannot tell them apart).
 * Returns the reason archiving stays off, or undefined.
 */
export function archiveRefusal(
  record: VolumeRecord,
  target: string | undefined,
): string | undefined {
  if (target === undefined) return undefined;
  if (!(record.parentTargets ?? []).includes(normalizeTarget(target))) return undefined;
  return `archiving off: BEYOND_PG_ARCHIVE_TARGET=${target} is the prefix the parent volume (${record.forkOf}) archives to; this fork never writes there: set a new prefix for it (then take a base backup)`;
}
