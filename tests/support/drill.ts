/**
 * The failover drill (issue 15), shared by tests/failover_test.ts and bench/replication.ts:
 * a primary and two replicas on loopback archiving to one prefix, `ANY 1 (r1, r2)`; writers
 * record every id whose COMMIT returned; the primary's whole process tree is killed with -9;
 * a small test-side control plane picks the replica with the highest flush LSN, promotes it
 * over RPC, points the other at it (set-primary) and brings the old primary back as a replica
 * (metadata + restart: pg_rewind at boot). Returns what the test asserts and the bench times.
 */
import postgres from "postgres";
import { checkChain } from "../../src/backup/chain.ts";
import { parseHistory } from "../../src/wal/lineage.ts";
import { formatLsn, parseSegment, SEGMENT_BYTES, walKind } from "../../src/wal/names.ts";
import { ok } from "./control.ts";
import { type Instance, killTree } from "./harness.ts";
import { freshBucket, s3Client, s3Env } from "./s3.ts";
import {
  lsnValue,
  READY,
  replStatus,
  sql,
  startPrimary,
  startReplica,
  streaming,
  until,
} from "./replication.ts";
import { waitDrained } from "./wal.ts";
import { decompress } from "../../src/wal/codec.ts";

export interface DrillOptions {
  level: "remote_write" | "on";
  /** How long the writers run before the kill (ms). */
  writeMs?: number;
  writers?: number;
  /**
   * Kill right after a segment switch returns (the replicas may hold the switch record but
   * not all of the padding after it: the old timeline then ends at a segment boundary, and
   * postgres marks that last segment for nobody).
   */
  killAfterSwitch?: boolean;
  log?: (line: string) => void;
}

export interface DrillResult {
  acked: number;
  /** Acknowledged ids missing on the new primary (must be empty). */
  lost: number[];
  promoted: string;
  /** kill -9 → first INSERT acknowledged by the new primary. */
  failoverMs: number;
  /** kill -9 → the new primary's synchronous quorum met again. */
  quorumMs: number;
  promoteMs: number;
  /** Row counts on the new primary, the re-pointed replica and the rejoined old primary. */
  counts: { primary: number; other: number; oldPrimary: number };
  rewound: boolean;
  archive: {
    historyStored: boolean;
    ownerTimeline: number | undefined;
    chain: ReturnType<typeof checkChain>;
    /** TL1 objects stored before the kill that changed afterwards (must be empty). */
    overwritten: string[];
    partialStored: boolean;
    /** Where timeline 1 ended (the history file); at a segment boundary or inside one. */
    switchPoint: string;
    atBoundary: boolean;
    /** The new primary stored the old timeline's last segment, which postgres marked for nobody. */
    storedAfterPromotion: string | undefined;
  };
}

type Sql = ReturnType<typeof postgres>;

function client(node: Instance): Sql {
  return postgres({
    host: "127.0.0.1",
    port: node.port,
    user: "postgres",
    password: node.password,
    database: "postgres",
    prepare: false,
    max: 4,
    connect_timeout: 5,
    idle_timeout: 0,
    onnotice: () => {},
  });
}

export async function runDrill(o: DrillOptions, nodes: Instance[]): Promise<DrillResult> {
  const say = o.log ?? (() => {});
  const bucket = await freshBucket("drill");
  const s3 = s3Env(bucket);
  const p0 = await startPrimary("p0", s3);
  nodes.push(p0);
  await p0.waitFor(READY, 60_000);
  await sql(p0, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)");
  const r1 = await startReplica("r1", p0, s3);
  const r2 = await startReplica("r2", p0, s3);
  nodes.push(r1, r2);
  await Promise.all([r1.waitFor(READY, 120_000), r2.waitFor(READY, 120_000)]);
  await Promise.all([streaming(p0, "r1"), streaming(p0, "r2")]);
  // As the design's control plane does: replicas first, then commits wait for them.
  await ok(p0, "set-sync-standbys", { standbys: "ANY 1 (r1, r2)", level: o.level });
  await waitDrained(p0, 60_000);
  const sysid = await sql(p0, "SELECT system_identifier FROM pg_control_system()");
  const major = Math.floor(Number(await sql(p0, "SHOW server_version_num")) / 10000);
  const walPrefix = `db/pg${major}-${sysid}/wal/`;
  say(`p0, r1, r2 up; ANY 1 (r1, r2), synchronous_commit = ${o.level}`);

  // Writers: an id counts only once its COMMIT returned.
  const db = client(p0);
  const acked: number[] = [];
  let nextId = 1;
  let killed = false;
  const writer = async () => {
    while (!killed) {
      const id = nextId++;
      try {
        await db`INSERT INTO acks (id, pad) VALUES (${id}, repeat('x', 300))`;
        acked.push(id); // an ack that raced the kill counts too
      } catch {
        if (killed) return;
      }
    }
  };
  const writing = Array.from({ length: o.writers ?? 4 }, writer);
  // Segments complete (and are archived) while the writers run.
  const switcher = (async () => {
    while (!killed) {
      await new Promise((r) => setTimeout(r, 700));
      if (!killed) await sql(p0, "SELECT pg_switch_wal()").catch(() => {});
    }
  })();
  const switchSql = o.killAfterSwitch ? client(p0) : undefined;
  if (switchSql) await switchSql`SELECT 1`; // connected before the moment that counts
  await new Promise((r) => setTimeout(r, o.writeMs ?? 3000));
  const before = await listObjects(bucket, walPrefix);

  // Host loss: the primary's whole process tree, at once.
  if (switchSql) await switchSql`SELECT pg_switch_wal()`;
  const tKill = performance.now();
  killed = true;
  const tree = killTree(p0);
  const settled = Promise.allSettled([...writing, switcher]).then(() =>
    Promise.all([db, ...(switchSql ? [switchSql] : [])].map((c) => c.end({ timeout: 1 })))
      .catch(() => {})
  );
  say(`killed p0 (${tree} processes) after ${acked.length} acknowledged commits`);

  // The control plane: the replica with the highest flush LSN wins.
  const flushed = await Promise.all([r1, r2].map(async (r) => ({
    r,
    lsn: lsnValue((await replStatus(r)).receiver?.receivedLsn),
  })));
  flushed.sort((a, b) => (a.lsn > b.lsn ? -1 : a.lsn < b.lsn ? 1 : 0));
  const winner = flushed[0]!.r;
  const other = flushed[1]!.r;
  const winnerName = winner === r1 ? "r1" : "r2";
  const otherName = winner === r1 ? "r2" : "r1";
  const promoted = await ok<{ ms: number; timeline: number }>(winner, "promote");
  const fresh = client(winner);
  await fresh`INSERT INTO acks (id, pad) VALUES (${-1}, 'first write after failover')`;
  const failoverMs = performance.now() - tKill;
  await settled;
  say(
    `promoted ${winnerName} (timeline ${promoted.timeline}) in ${promoted.ms} ms; first write ${
      Math.round(failoverMs)
    } ms after the kill`,
  );

  // The other replica follows the new primary; then commits wait for it again.
  await ok(winner, "add-standby", { name: otherName });
  await ok(winner, "add-standby", { name: "p0" });
  await ok(other, "set-primary", { primary: `127.0.0.1:${winner.directPort}` });
  await ok(winner, "set-sync-standbys", { standbys: `ANY 1 (${otherName}, p0)`, level: o.level });
  await streaming(winner, otherName, 60_000);
  const quorumMs = performance.now() - tKill;
  await fresh`INSERT INTO acks (id, pad) VALUES (${-2}, 'synchronous again')`;

  // The old primary comes back as a replica of the new one: metadata + restart, rewound.
  const p0b = await startReplica("p0", winner, s3, {
    root: p0.root,
    port: p0.port,
    directPort: p0.directPort,
    httpPort: p0.httpPort,
  });
  nodes.push(p0b);
  await p0b.waitFor(READY, 120_000);
  const rewound = p0b.lines.some((l) => /replica: pg_rewind: /.test(l));
  await streaming(winner, "p0", 60_000);

  // Convergence: everyone replays up to the new primary's position.
  await fresh`INSERT INTO acks (id, pad) VALUES (${-3}, 'converge')`;
  const target = lsnValue(await sql(winner, "SELECT pg_current_wal_lsn()"));
  for (const r of [other, p0b]) {
    await until(
      "replay catches up",
      async () => lsnValue(await sql(r, "SELECT pg_last_wal_replay_lsn()")) >= target,
      60_000,
    );
  }
  const count = async (n: Instance) => Number(await sql(n, "SELECT count(*) FROM acks"));
  const counts = {
    primary: await count(winner),
    other: await count(other),
    oldPrimary: await count(p0b),
  };
  const have = new Set(
    (await sql(winner, "SELECT id FROM acks WHERE id > 0")).split("\n").map(Number),
  );
  const lost = acked.filter((id) => !have.has(id));
  await fresh.end({ timeout: 1 });

  // The archive across the switch: history stored, owner moved, no hole, nothing overwritten.
  await waitDrained(winner, 120_000);
  const after = await listObjects(bucket, walPrefix);
  const names = new Set([...after.keys()].map((k) => k.slice(walPrefix.length)));
  const owner = await ownerTimeline(bucket);
  const historyText = await getText(bucket, `${walPrefix}00000002.history`);
  const ancestors = historyText ? parseHistory(historyText) : [];
  const tl1End = ancestors.find((a) => a.timeline === 1)?.end;
  const firstTl1 = [...names].filter((n) => walKind(n) === "segment" && n.startsWith("00000001"))
    .sort()[0];
  const startNo = firstTl1 ? parseSegment(firstTl1)!.number : 1n;
  const chain = checkChain({
    archived: names,
    lineage: { timeline: 2, ancestors },
    start: { lsn: startNo * BigInt(SEGMENT_BYTES), timeline: 1 },
  });
  const overwritten = [...before].filter(([k, v]) => {
    const now = after.get(k);
    return !now || now.size !== v.size || now.modified !== v.modified;
  }).map(([k]) => k);
  return {
    acked: acked.length,
    lost,
    promoted: winnerName,
    failoverMs,
    quorumMs,
    promoteMs: promoted.ms,
    counts,
    rewound,
    archive: {
      historyStored: historyText !== undefined,
      ownerTimeline: owner,
      chain,
      overwritten,
      partialStored: [...names].some((n) => n.startsWith("00000001") && n.endsWith(".partial")),
      switchPoint: tl1End === undefined ? "" : formatLsn(tl1End),
      atBoundary: tl1End !== undefined && tl1End % BigInt(SEGMENT_BYTES) === 0n,
      storedAfterPromotion: winner.lines.map((l) =>
        /archive: storing (\w+), the last segment of timeline/.exec(l)?.[1]
      ).find((n) => n),
    },
  };
}

async function listObjects(
  bucket: string,
  prefix: string,
): Promise<Map<string, { size: number; modified: number }>> {
  const out = new Map<string, { size: number; modified: number }>();
  for (const o of await s3Client(bucket).list(prefix)) {
    out.set(o.key, { size: o.size, modified: o.lastModified.getTime() });
  }
  return out;
}

async function getText(bucket: string, key: string): Promise<string | undefined> {
  const obj = await s3Client(bucket).get(key, 30_000);
  if (!obj) return undefined;
  const body = await decompress(obj.metadata["beyond-codec"] ?? "none", obj.body);
  return new TextDecoder().decode(body);
}

async function ownerTimeline(bucket: string): Promise<number | undefined> {
  const text = await getText(bucket, "db/beyond-pg.json");
  return text ? JSON.parse(text).timeline : undefined;
}
