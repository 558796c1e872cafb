/**
 * Issue 14 benchmark (Tier 1.5), side by side in one run on loopback:
 *   1. pgbench TPS and commit latency p50/p99 (TPC-B, 4 clients, direct port): (a) local only,
 *      (b) 1 sink, (c) 2 sinks `ANY 1`, (d) a synchronous streaming standby (the anchor) at
 *      `remote_write`, and (d') at `on` (a sink acknowledges after its fsync, as `on` does);
 *      goals (c) ≥ 0.8× (a) and ≥ 1.0× (d); the sinks' RSS and CPU during (c); (c'), the same
 *      sinks acknowledging on write (BEYOND_PG_SINK_ACK=write); and (c*), the same sinks with
 *      their WAL on tmpfs (what sharing one disk with the primary costs here);
 *   2. the gap fetch of ~64 MB of WAL the volume lost (goal ≤ 2 s), from the status phases;
 *   3. the host-loss trial (tests/support/host_loss.ts) N times with 2 sinks `ANY 1` (every
 *      acknowledged commit must survive), and once without sinks (the loss it prevents).
 *
 * `deno task bench wal_sink [--runs N]` (trials; default 10). `--only tps|gap|trials`;
 * `--ack write`: the trials' sinks acknowledge on write. `--pin`: the sinks and the standby on
 * their own CPU (1), the primary, pgbench and this bench on the other (0) — the nearest this
 * 2-core machine comes to sinks on other hosts: the primary's host is the same size in every
 * row, and what a sink or standby burns is not taken from it (the disk is still shared).
 * `--clients N`: pgbench clients in the TPS rows (default 4).
 * `--tps-rounds N`: the TPS rows N times in turn, medians (each row starts from a checkpoint).
 */
import { ok } from "../tests/support/control.ts";
import {
  cleanup,
  freePort,
  type Instance,
  killPids,
  psql,
  startSupervisor,
  tempRoot,
} from "../tests/support/harness.ts";
import { hostLossTrial } from "../tests/support/host_loss.ts";
import { READY, replEnv, startReplica, streaming } from "../tests/support/replication.ts";
import { type Sink, sinkEnv, startSink } from "../tests/support/sink.ts";
import { median, pgbench as pgbenchTps, pgbenchOutput, runsFromArgs, sh, tpsOf } from "./lib.ts";

const runs = runsFromArgs(10);
const only = Deno.args.includes("--only") ? Deno.args[Deno.args.indexOf("--only") + 1] : "";
/** `--ack write`: the trials' sinks acknowledge on write (BEYOND_PG_SINK_ACK). */
const ack = Deno.args.includes("--ack") ? Deno.args[Deno.args.indexOf("--ack") + 1] : "flush";
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? 8);
const pin = Deno.args.includes("--pin");
/** `--clients N`: pgbench clients in the TPS rows (default 4). */
const CLIENTS = Deno.args.includes("--clients")
  ? Number(Deno.args[Deno.args.indexOf("--clients") + 1])
  : 4;
/** `--tps-rounds N`: every TPS row N times in turn (medians); default 1. */
const tpsRounds = Deno.args.includes("--tps-rounds")
  ? Number(Deno.args[Deno.args.indexOf("--tps-rounds") + 1])
  : 1;
/** With --pin: how the sinks and the standby start (on CPU 1); everything else inherits CPU 0. */
const away = pin ? { wrap: ["taskset", "-c", "1"] } : {};
if (pin) await sh("taskset", ["-a", "-p", "-c", "0", String(Deno.pid)]);
const keepLines = /^\[beyond-pg\]/;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? 0;
}

/** TPS and per-transaction latencies (ms) from pgbench's transaction log. */
async function pgbench(pg: Instance): Promise<{ tps: number; p50: number; p99: number }> {
  const dir = await Deno.makeTempDir({ prefix: "bpg-pgbench-" });
  // Every row starts from a checkpoint: none pays for the row before it.
  await psql(pg.directPort, "CHECKPOINT", { password: pg.password });
  try {
    const out = await pgbenchOutput(pg, [
      "-c",
      String(CLIENTS),
      "-j",
      "2",
      "-T",
      String(SECONDS),
      "-n",
      "-l",
      `--log-prefix=${dir}/tx`,
    ]);
    const lat: number[] = [];
    for (const e of Deno.readDirSync(dir)) {
      for (const line of Deno.readTextFileSync(`${dir}/${e.name}`).split("\n")) {
        const us = Number(line.split(" ")[2]);
        if (line && Number.isFinite(us)) lat.push(us / 1000);
      }
    }
    return {
      tps: tpsOf(out),
      p50: pct(lat, 50),
      p99: pct(lat, 99),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** RSS (KiB) and CPU ticks of a set of processes. */
function usage(pids: number[]): { rssKb: number; ticks: number } {
  let rssKb = 0;
  let ticks = 0;
  for (const pid of pids) {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      rssKb += Number(status.match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0);
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(f[11]) + Number(f[12]);
    } catch { /* gone */ }
  }
  return { rssKb, ticks };
}

/** Run `fn`; meanwhile each group's CPU (% of one core) and, at the end, its RSS (KiB). */
async function withUsage<T>(groups: number[][], fn: () => Promise<T>) {
  const before = groups.map(usage);
  const t0 = performance.now();
  const result = await fn();
  const secs = (performance.now() - t0) / 1000;
  const after = groups.map(usage);
  return {
    result,
    cpu: after.map((a, i) => (a.ticks - before[i]!.ticks) / secs),
    rssKb: after.map((a) => a.rssKb),
  };
}

/** Sinks' processes in two groups: their supervisors (deno), and the rest (pg_receivewal). */
function sinkParts(sinks: Sink[]): [number[], number[]] {
  const deno = sinks.map((s) => s.proc.pid);
  return [deno, sinks.flatMap((s) => s.pids()).filter((pid) => !deno.includes(pid))];
}

/** The primary's walsender processes. */
function walsenders(p: Instance): number[] {
  return p.pids().filter((pid) => {
    try {
      return Deno.readTextFileSync(`/proc/${pid}/cmdline`).includes("walsender");
    } catch {
      return false;
    }
  });
}

/** Roots given to restarts are not the harness's to remove: these are, at the end. */
const roots: string[] = [];
async function madeRoot(): Promise<string> {
  const r = await tempRoot();
  roots.push(r);
  return r;
}
addEventListener("unload", () => {
  for (const r of roots) {
    try {
      Deno.removeSync(r, { recursive: true });
    } catch { /* gone */ }
  }
});

console.log(
  `# WAL sink benchmark (loopback, ${
    pin ? "primary + pgbench on CPU 0, sinks and standby on CPU 1" : "2 shared cores"
  }; pgbench -T ${SECONDS})`,
);

async function primaryWithSinks(
  names: string[],
  extra: Record<string, string> = {},
  sinkExtra: Record<string, string> = {},
) {
  const directPort = freePort();
  const sinks: Sink[] = [];
  for (const n of names) sinks.push(await startSink(n, directPort, { env: sinkExtra, ...away }));
  const restart = {
    root: await madeRoot(),
    port: freePort(),
    directPort,
    httpPort: freePort(),
    keepLines,
    env: replEnv({ ...sinkEnv(sinks), ...extra }),
  };
  const p = await startSupervisor(restart);
  await p.waitFor(READY, 60_000);
  return { p, sinks, restart };
}

if (!only || only === "tps") {
  try {
    const { p, sinks } = await primaryWithSinks(["s1", "s2"]);
    await Promise.all(sinks.map((s) => streaming(p, s.name)));
    await ok(p, "set-sync-standbys", { standbys: "off" });
    await psql(p.directPort, "SELECT 1", { password: p.password });
    await pgbenchTps(p, ["-i", "-s", "10", "-q"]);
    for (const s of sinks) await s.stop();
    await ok(p, "add-standby", { name: "r1" });
    const replicaRoot = await madeRoot();
    type Row = { tps: number; p50: number; p99: number };
    const rows = new Map<string, Row[]>();
    const add = (name: string, r: Row) => rows.set(name, [...(rows.get(name) ?? []), r]);
    const sinkUse = {
      c: [] as number[],
      cw: [] as number[],
      deno: [] as number[],
      receivewal: [] as number[],
      walsenders: [] as number[],
      rssC: 0,
      rssW: 0,
    };
    // Rounds of every row in turn; the figures are medians over rounds (this disk is noisy).
    for (let round = 0; round < tpsRounds; round++) {
      // (a) with the sinks stopped: nothing streams.
      await ok(p, "set-sync-standbys", { standbys: "off" });
      add("(a) local only", await pgbench(p));
      const s1 = await startSink("s1", p.directPort, { root: sinks[0]!.root, ...away });
      await streaming(p, "s1");
      await ok(p, "set-sync-standbys", { standbys: "ANY 1 (s1)", level: "remote_write" });
      add("(b) 1 sink", await pgbench(p));
      const s2 = await startSink("s2", p.directPort, { root: sinks[1]!.root, ...away });
      await streaming(p, "s2");
      await ok(p, "set-sync-standbys", { standbys: "ANY 1 (s1, s2)", level: "remote_write" });
      // Where the CPU goes: the sinks' supervisors (deno), their pg_receivewal, and the
      // primary's walsenders (which the primary's host pays wherever the sinks run).
      const u = await withUsage([...sinkParts([s1, s2]), walsenders(p)], () => pgbench(p));
      add("(c) 2 sinks, ANY 1", u.result);
      sinkUse.c.push(u.cpu[0]! + u.cpu[1]!);
      sinkUse.deno.push(u.cpu[0]!);
      sinkUse.receivewal.push(u.cpu[1]!);
      sinkUse.walsenders.push(u.cpu[2]!);
      sinkUse.rssC = Math.max(sinkUse.rssC, u.rssKb[0]! + u.rssKb[1]!);
      await s1.stop();
      await s2.stop();
      // (c') the same sinks acknowledging on write (BEYOND_PG_SINK_ACK=write: libeatmydata under
      // pg_receivewal, the sink fsyncs every 200 ms) — what `remote_write` promises of a standby.
      const w = await Promise.all(
        [s1, s2].map((s, i) =>
          startSink(s.name, p.directPort, {
            root: sinks[i]!.root,
            env: { BEYOND_PG_SINK_ACK: "write" },
            ...away,
          })
        ),
      );
      await Promise.all(w.map((s) => streaming(p, s.name)));
      const uw = await withUsage(sinkParts(w), () => pgbench(p));
      add("(c') 2 sinks, ack=write", uw.result);
      sinkUse.cw.push(uw.cpu[0]! + uw.cpu[1]!);
      sinkUse.rssW = Math.max(sinkUse.rssW, uw.rssKb[0]! + uw.rssKb[1]!);
      for (const s of w) await s.stop();
      // The same two sinks keeping their WAL in memory (tmpfs): on their own hosts a sink's fsync
      // is its own disk's; here every node shares one disk, and a sink's flush queues behind the
      // primary's. An upper bound for a sink on a separate fast disk, not a durable setup.
      const shm = await Deno.makeTempDir({ prefix: "bpg-bench-sinks-" });
      await sh("mount", ["-t", "tmpfs", "-o", "size=2g,mode=0700", "tmpfs", shm]);
      try {
        const mem = await Promise.all(
          ["s1", "s2"].map((name) =>
            startSink(name, p.directPort, {
              env: { BEYOND_PG_SINK_DIR: `${shm}/${name}` },
              ...away,
            })
          ),
        );
        await Promise.all(mem.map((s) => streaming(p, s.name)));
        add("(c*) 2 sinks, tmpfs", await pgbench(p));
        for (const s of mem) await s.stop();
        await cleanup(...mem);
      } finally {
        await sh("umount", [shm], { check: false });
        await Deno.remove(shm, { recursive: true });
      }
      const r1 = await startReplica("r1", p, {}, { root: replicaRoot, keepLines, ...away });
      await r1.waitFor(READY, 120_000);
      await streaming(p, "r1");
      await ok(p, "set-sync-standbys", { standbys: "ANY 1 (r1)", level: "remote_write" });
      add("(d) sync standby", await pgbench(p));
      // A sink acknowledges after fsync (pg_receivewal --synchronous): the like-for-like standby
      // is one at `on`, which flushes too.
      await ok(p, "set-sync-standbys", { standbys: "ANY 1 (r1)", level: "on" });
      add("(d') standby at on", await pgbench(p));
      await ok(p, "set-sync-standbys", { standbys: "off" });
      await r1.stop();
      await cleanup(r1);
    }
    const med = (name: string) => {
      const rs = rows.get(name)!;
      return {
        tps: median(rs.map((r) => r.tps)),
        p50: median(rs.map((r) => r.p50)),
        p99: median(rs.map((r) => r.p99)),
      };
    };
    const a = med("(a) local only").tps;
    const c = med("(c) 2 sinks, ANY 1").tps;
    const cw = med("(c') 2 sinks, ack=write").tps;
    const cm = med("(c*) 2 sinks, tmpfs").tps;
    const d = med("(d) sync standby").tps;
    const d2 = med("(d') standby at on").tps;
    console.log(
      `\npgbench (TPC-B, -c ${CLIENTS} -j 2, scale 10, synchronous_commit = remote_write; medians of ${tpsRounds} round(s), each row in turn, each from a checkpoint):`,
    );
    for (const name of rows.keys()) {
      const r = med(name);
      console.log(
        `  ${name.padEnd(24)} ${r.tps.toFixed(0).padStart(6)} tps  ${
          (r.tps / a).toFixed(2)
        }×  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms   rounds: ${
          rows.get(name)!.map((x) => x.tps.toFixed(0)).join(" ")
        }`,
      );
    }
    console.log(
      `(c)/(a) ${(c / a).toFixed(2)} (goal ≥ 0.8: ${c / a >= 0.8 ? "PASS" : "FAIL"}); (c)/(d) ${
        (c / d).toFixed(2)
      } (goal ≥ 1.0: ${c / d >= 1 ? "PASS" : "FAIL"}); (c)/(d') ${
        (c / d2).toFixed(2)
      }; with the sinks on tmpfs (c*)/(a) ${(cm / a).toFixed(2)}, (c*)/(d) ${(cm / d).toFixed(2)}`,
    );
    console.log(
      `sinks acknowledging on write (BEYOND_PG_SINK_ACK=write): (c')/(a) ${
        (cw / a).toFixed(2)
      } (goal ≥ 0.8: ${cw / a >= 0.8 ? "PASS" : "FAIL"}); (c')/(d) ${
        (cw / d).toFixed(2)
      } (goal ≥ 1.0: ${cw / d >= 1 ? "PASS" : "FAIL"})`,
    );
    console.log(
      `the two sinks under (c): RSS ${
        Math.round(sinkUse.rssC / 1024)
      } MiB (deno + pg_receivewal, both), CPU ${
        median(sinkUse.c).toFixed(0)
      }% of one core; under (c'): RSS ${Math.round(sinkUse.rssW / 1024)} MiB, CPU ${
        median(sinkUse.cw).toFixed(0)
      }%`,
    );
    console.log(
      `  CPU under (c), % of one core: the sinks' supervisors ${
        median(sinkUse.deno).toFixed(0)
      }, their pg_receivewal ${
        median(sinkUse.receivewal).toFixed(0)
      }; on the primary, its two walsenders ${median(sinkUse.walsenders).toFixed(0)}`,
    );
  } finally {
    await cleanup();
  }
}

if (!only || only === "gap") {
  try {
    const { p, restart } = await primaryWithSinks(["s1", "s2"]);
    await Promise.all(["s1", "s2"].map((n) => streaming(p, n)));
    await psql(p.directPort, "CREATE TABLE fill (id bigint, pad text)", {
      password: p.password,
    });
    await psql(p.directPort, "CHECKPOINT", { password: p.password });
    const data = `${p.root}/data`;
    const atCopy = await psql(p.directPort, "SELECT pg_current_wal_flush_lsn()", {
      password: p.password,
    });
    const tree = p.pids();
    killPids(tree, "SIGSTOP");
    try {
      await sh("cp", ["-a", data, `${data}.snap`]);
    } finally {
      killPids(tree, "SIGCONT");
    }
    // ~64 MB of WAL that the copy does not have.
    await psql(
      p.directPort,
      "INSERT INTO fill SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 60000) g",
      { password: p.password },
    );
    const lost = await psql(
      p.directPort,
      `SELECT pg_current_wal_flush_lsn() - '${atCopy}'::pg_lsn`,
      { password: p.password },
    );
    killPids(p.pids(), "SIGKILL");
    await p.exited.catch(() => {});
    await sh("rm", ["-rf", data]);
    await sh("mv", [`${data}.snap`, data]);
    const next = await startSupervisor(restart);
    await next.waitFor(READY, 180_000);
    const st = await ok<
      { walSinks: { gapFetch: { ms: number; bytes: number; outcome: string; steps: unknown } } }
    >(
      next,
      "status",
    );
    const g = st.walSinks.gapFetch;
    const rows = await psql(next.directPort, "SELECT count(*) FROM fill", {
      password: next.password,
    });
    console.log(
      `\ngap fetch: ${g.outcome}, ${(g.bytes / 2 ** 20).toFixed(1)} MiB placed (≈${
        (Number(lost) / 2 ** 20).toFixed(0)
      } MiB of WAL written after the copy) in ${g.ms} ms (goal ≤ 2000 ms for 64 MB: ${
        g.ms <= 2000 ? "PASS" : "FAIL"
      }); rows after boot ${rows} of 60000; steps ${JSON.stringify(g.steps)}`,
    );
  } finally {
    await cleanup();
  }
}

if (!only || only === "trials") {
  let seed = 1414;
  const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  try {
    const { p: first, restart } = await primaryWithSinks(["s1", "s2"], {}, {
      BEYOND_PG_SINK_ACK: ack ?? "flush",
    });
    let p = first;
    await Promise.all(["s1", "s2"].map((n) => streaming(p, n)));
    await psql(p.directPort, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)", {
      password: p.password,
    });
    let lost = 0;
    let acked = 0;
    const fetchMs: number[] = [];
    const bootMs: number[] = [];
    for (let i = 1; i <= runs; i++) {
      const t = await hostLossTrial(p, { rand, restart });
      p = t.next;
      lost += t.lost.length;
      acked += t.acked;
      fetchMs.push(Number(t.gapFetch?.["ms"] ?? NaN));
      bootMs.push(t.bootMs);
      console.log(
        `trial ${i}: volume back ${
          Math.round(t.rewindMs)
        } ms; ${t.acked} acknowledged, ${t.lost.length} lost; gap fetch ${
          t.gapFetch?.["outcome"]
        } ${t.gapFetch?.["bytes"] ?? 0} bytes in ${t.gapFetch?.["ms"]} ms; boot ${
          Math.round(t.bootMs)
        } ms`,
      );
      await Promise.all(["s1", "s2"].map((n) => streaming(p, n)));
    }
    console.log(
      `\nhost loss with 2 sinks (ANY 1, BEYOND_PG_SINK_ACK=${ack}): ${runs} trials, ${acked} acknowledged, ${lost} lost (${
        lost === 0 ? "PASS" : "FAIL"
      }); gap fetch median ${Math.round(median(fetchMs))} ms, boot median ${
        Math.round(median(bootMs))
      } ms`,
    );
  } finally {
    await cleanup();
  }
  try {
    const root = await madeRoot();
    const restart = {
      root,
      port: freePort(),
      directPort: freePort(),
      httpPort: freePort(),
      keepLines,
    };
    const p = await startSupervisor(restart);
    await p.waitFor(READY, 60_000);
    await psql(p.directPort, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)", {
      password: p.password,
    });
    const t = await hostLossTrial(p, { rand, restart });
    console.log(
      `without sinks: volume back ${
        Math.round(t.rewindMs)
      } ms; ${t.acked} acknowledged, ${t.lost.length} lost`,
    );
  } finally {
    await cleanup();
  }
}
