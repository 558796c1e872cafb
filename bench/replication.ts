/**
 * Issue 15 benchmark (Tier 2), side by side in one run on loopback:
 *   1. pgbench TPS (TPC-B, 4 clients, on the direct port): the primary alone vs with one async
 *      replica vs `ANY 1 (r1, r2)` at `remote_write` and at `on`; replica replay lag (bytes)
 *      p50/p99 sampled every 100 ms under the async load; the replica's clone (boot) vs a bare
 *      `pg_basebackup` of the same primary;
 *   2. the failover drill (tests/support/drill.ts) N times: kill -9 of the primary's tree →
 *      first write accepted on the promoted replica; median vs the goal of 5 s, with the
 *      promote RPC's own share and the time until the synchronous quorum is met again.
 *
 * `deno task bench replication [--runs N]` (drills; default 5). `--only tps|failover`.
 */
import postgres from "postgres";
import { ok } from "../tests/support/control.ts";
import { cleanup, type Instance } from "../tests/support/harness.ts";
import { runDrill } from "../tests/support/drill.ts";
import {
  READY,
  REPL_PASSWORD,
  startPrimary,
  startReplica,
  streaming,
} from "../tests/support/replication.ts";
import { binDir, median, pgbench, runsFromArgs, sh } from "./lib.ts";

const runs = runsFromArgs(5);
const only = Deno.args.includes("--only") ? Deno.args[Deno.args.indexOf("--only") + 1] : "";
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 8);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

console.log(`# replication benchmark (loopback, 2 shared cores; pgbench -T ${SECONDS})`);

if (only !== "failover") {
  const nodes: Instance[] = [];
  try {
    const p0 = await startPrimary("p0", {}, { keepLines: /^\[beyond-pg\]/ });
    nodes.push(p0);
    await p0.waitFor(READY, 60_000);
    await pgbench(p0, ["-i", "-s", "10", "-q"]);
    const run = () => pgbench(p0, ["-c", "4", "-j", "2", "-T", String(SECONDS), "-n"]);
    const tps: Record<string, number> = {};
    tps["primary alone"] = await run();

    const r1 = await startReplica("r1", p0, {}, { keepLines: /^\[beyond-pg\]/ });
    nodes.push(r1);
    await r1.waitFor(READY, 120_000);
    await streaming(p0, "r1");
    // The clone (boot's initdb phase on a replica) vs a bare pg_basebackup of the same primary.
    const st = await ok<{ phases: Record<string, number> }>(r1, "status");
    const cloneMs = st.phases["initdb_ms"] ?? NaN;
    const bare = await Deno.makeTempDir({ prefix: "bpg-basebackup-" });
    const tb = performance.now();
    await sh(`${binDir}/pg_basebackup`, [
      "-d",
      `host=127.0.0.1 port=${p0.directPort} user=beyond_replicator sslmode=require`,
      "-D",
      `${bare}/d`,
      "-X",
      "stream",
      "-c",
      "fast",
      "-w",
    ], { env: { PGPASSWORD: REPL_PASSWORD } });
    const bareMs = performance.now() - tb;
    const mb = Number((await sh("du", ["-sm", `${bare}/d`])).split("\t")[0]);
    await Deno.remove(bare, { recursive: true });
    const db = postgres({
      host: "127.0.0.1",
      port: p0.directPort,
      user: "postgres",
      password: p0.password,
      database: "postgres",
      max: 1,
      onnotice: () => {},
    });
    const lag: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await db`SELECT coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(),
          replay_lsn)), 0)::float8 AS lag FROM pg_stat_replication`;
        lag.push(Number(row?.lag ?? 0));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    tps["1 async replica"] = await run();
    sampling = false;
    await sampler;
    await db.end({ timeout: 1 });

    const r2 = await startReplica("r2", p0, {}, { keepLines: /^\[beyond-pg\]/ });
    nodes.push(r2);
    await r2.waitFor(READY, 120_000);
    await streaming(p0, "r2");
    for (const level of ["remote_write", "on"]) {
      await ok(p0, "set-sync-standbys", { standbys: "ANY 1 (r1, r2)", level });
      tps[`ANY 1 of 2, ${level}`] = await run();
    }
    const base = tps["primary alone"]!;
    console.log("\npgbench TPS (TPC-B, -c 4 -j 2, scale 10):");
    for (const [k, v] of Object.entries(tps)) {
      console.log(`  ${k.padEnd(22)} ${v.toFixed(0).padStart(6)} tps  ${(v / base).toFixed(2)}×`);
    }
    console.log(
      `replica clone (${mb} MB): ${Math.round(cloneMs)} ms (${
        (mb / (cloneMs / 1000)).toFixed(0)
      } MB/s) vs bare pg_basebackup ${Math.round(bareMs)} ms (${
        (mb / (bareMs / 1000)).toFixed(0)
      } MB/s) → ${(cloneMs / bareMs).toFixed(2)}×`,
    );
    console.log(
      `replica replay lag under the async load: p50 ${Math.round(pct(lag, 50) / 1024)} KiB, p99 ${
        Math.round(pct(lag, 99) / 1024)
      } KiB, max ${Math.round(Math.max(...lag) / 1024)} KiB (${lag.length} samples)`,
    );
  } finally {
    await cleanup(...nodes);
  }
}

if (only !== "tps") {
  const failover: number[] = [];
  const promote: number[] = [];
  const quorum: number[] = [];
  let lost = 0;
  let acked = 0;
  for (let i = 0; i < runs; i++) {
    const nodes: Instance[] = [];
    try {
      const r = await runDrill({ level: "remote_write", writeMs: 2000 }, nodes);
      failover.push(r.failoverMs);
      promote.push(r.promoteMs);
      quorum.push(r.quorumMs);
      lost += r.lost.length;
      acked += r.acked;
      console.log(
        `drill ${i + 1}: failover ${
          Math.round(r.failoverMs)
        } ms (promote ${r.promoteMs} ms), quorum back ${
          Math.round(r.quorumMs)
        } ms; ${r.acked} acknowledged, ${r.lost.length} lost`,
      );
    } finally {
      await cleanup(...nodes);
    }
  }
  const m = median(failover);
  console.log(
    `\nfailover (kill -9 → first write on the promoted replica): median ${
      Math.round(m)
    } ms of ${runs} [${failover.map(Math.round).join(" ")}] (goal ≤ 5000 ms: ${
      m <= 5000 ? "PASS" : "FAIL"
    }); promote RPC median ${Math.round(median(promote))} ms; quorum met again median ${
      Math.round(median(quorum))
    } ms; ${acked} acknowledged commits, ${lost} lost`,
  );
}
