/**
 * Issue 16 benchmark, side by side in one run (the supervisor is the built artifact, as in
 * bench/startup.ts, the same way in every arm):
 *
 *   fork boot:  a crash-consistent copy of a database under pgbench (no pre-fork) and one taken
 *               right after `pre-fork`, each booted as a fork → first query through 5432,
 *               against a clean restart of the same data (target with pre-fork ≤ 1.5×)
 *   handoff:    8 clients through a TCP front across `handoff-prepare` → next generation (started
 *               before, waiting for the volume) → re-point: the pause each client sees, p50/max
 *               (target ≤ 1 s), and failed transactions (must be 0)
 *   hot-set:    the files a fork boot opens (strace -f -e openat) against the `hot-set` list
 *   idle:       the supervisor's RSS and CPU over 10 s idle, idle watcher on vs off
 *
 * Usage: deno run -A bench/lifecycle.ts [--runs N]     (root; ports 16750-16799; /tmp/h8-*)
 */
import { ok } from "../tests/support/control.ts";
import { Front } from "../tests/support/front.ts";
import {
  cleanup,
  type Instance,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "../tests/support/harness.ts";
import { copyVolume, frozen } from "../tests/support/volume.ts";
import { percentile, Workload, WORKLOAD_TABLE } from "../tests/support/workload.ts";
import { fmt, median, report, runsFromArgs, sh } from "./lib.ts";

const runs = runsFromArgs(3);
// Measure what the image runs: the built artifact (postgres's archive_command starts it too).
const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
await sh(Deno.execPath(), ["task", "--quiet", "build"], {
  env: { PATH: Deno.env.get("PATH") ?? "" },
});
Deno.env.set("BEYOND_PG_TEST_BIN", `${repo}/dist/beyond-pg`);
const READY = /\[beyond-pg\] ready:/;
const HOT_SECONDS = 8;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const roots: string[] = [];
const instances: Instance[] = [];

async function root(prefix: string): Promise<string> {
  const r = await tempRoot(`h8-${prefix}-`);
  roots.push(r);
  return r;
}

async function start(o: Parameters<typeof startSupervisor>[0]): Promise<Instance> {
  const pg = await startSupervisor(o);
  instances.push(pg);
  return pg;
}

/** Spawn → READY → first query through 5432 (ms), and the instance. */
async function bootToQuery(
  r: string,
  port: number,
  env: Record<string, string> = {},
): Promise<{ ms: number; pg: Instance }> {
  const t0 = performance.now();
  const pg = await start({ root: r, port, directPort: port + 1, httpPort: port + 2, env });
  await pg.waitFor(READY, 300_000);
  await psql(port, "select 1", { password: pg.password });
  return { ms: performance.now() - t0, pg };
}

function replayLine(pg: Instance): string {
  const redo = pg.lines.find((l) => /redo done at/.test(l))?.replace(/.*elapsed: /, "replay ") ??
    "no replay";
  const phases = pg.lines.find((l) => /startup phases/.test(l))?.replace(/.*startup phases: /, "");
  return `${redo}; ${phases}`;
}

/** /proc/<pid>: resident KiB and CPU ticks (user + system). */
function procUsage(pid: number): { rssKb: number; ticks: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    rssKb: Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? 0),
    ticks: Number(f[11]) + Number(f[12]),
  };
}

async function idleUsage(pg: Instance, seconds = 10): Promise<{ rssMb: number; cpuPct: number }> {
  const a = procUsage(pg.proc.pid);
  await sleep(seconds * 1000);
  const b = procUsage(pg.proc.pid);
  return { rssMb: b.rssKb / 1024, cpuPct: (b.ticks - a.ticks) / seconds };
}

/** Boot a fork of `parent` (after pre-fork) under strace; what hot-set covers of what it opens. */
async function hotSetCoverage(parent: Instance, parentRoot: string, port: number) {
  const hot = await ok<{ files: { path: string; bytes: number }[] }>(parent, "hot-set");
  await ok(parent, "pre-fork");
  const r = await root("btrace");
  await frozen(parent, () => copyVolume(`${parentRoot}/data`, `${r}/data`));
  const traceFile = `${r}/strace.txt`;
  const pg = await start({
    root: r,
    port,
    directPort: port + 1,
    httpPort: port + 2,
    env: { BEYOND_PG_FORK_OF: "vol-parent" },
    wrap: ["strace", "-f", "-qq", "-e", "trace=openat", "-o", traceFile],
  });
  await pg.waitFor(READY, 300_000);
  await psql(port, "select 1", { password: pg.password });
  const pgdata = `${r}/data/main`;
  const norm = (p: string) =>
    (p.startsWith("/") ? p : `${pgdata}/${p}`).replaceAll("/./", "/")
      .replace(`${pgdata}/pg_wal/`, `${r}/data/wal/`);
  const opened = new Map<string, number>();
  for (const line of Deno.readTextFileSync(traceFile).split("\n")) {
    const m = line.match(/openat\(AT_FDCWD, "([^"]+)".*\) = \d+$/);
    if (!m) continue;
    const path = norm(m[1]!);
    if (!path.startsWith(`${r}/data/`) || opened.has(path)) continue;
    try {
      const st = Deno.statSync(path);
      if (st.isFile) opened.set(path, st.size);
    } catch { /* gone */ }
  }
  await cleanup(pg);
  const listed = new Set(hot.files.map((f) => norm(f.path.replace(parentRoot, r))));
  const covered = [...opened].filter(([p]) => listed.has(p));
  const sum = (xs: [string, number][]) => xs.reduce((n, [, b]) => n + b, 0);
  const uncovered = [...opened].filter(([p]) => !listed.has(p)).sort((a, b) => b[1] - a[1]);
  const unused = [...listed].filter((p) => !opened.has(p));
  return {
    line: `hot-set covers ${covered.length} of the ${opened.size} files a fork boot opens (${
      (100 * sum(covered) / Math.max(1, sum([...opened]))).toFixed(0)
    }% of ${
      (sum([...opened]) / 2 ** 20).toFixed(1)
    } MiB); ${unused.length} of its ${listed.size} files were not opened`,
    uncovered: uncovered.slice(0, 8).map(([p, b]) =>
      `${p.replace(`${r}/data/`, "")} (${(b / 1024).toFixed(0)} KiB)`
    ),
  };
}

try {
  // ---- a hot parent ---------------------------------------------------------------------
  const parentRoot = await root("bparent");
  const parent = await start({ root: parentRoot, port: 16750, directPort: 16751, httpPort: 16752 });
  await parent.waitFor(READY, 300_000);
  const pw = parent.password;
  const pgbenchEnv = { PGPASSWORD: pw, PATH: Deno.env.get("PATH") ?? "" };
  const pgbenchArgs = ["-h", "127.0.0.1", "-p", String(parent.directPort), "-U", "postgres"];
  await new Deno.Command("pgbench", {
    args: [...pgbenchArgs, "-i", "-s", "5", "-q", "postgres"],
    env: pgbenchEnv,
    stdout: "null",
    stderr: "null",
  }).output();
  const pgbench = new Deno.Command("pgbench", {
    args: [...pgbenchArgs, "-n", "-c", "4", "-T", "3600", "postgres"],
    env: pgbenchEnv,
    stdout: "null",
    stderr: "null",
  }).spawn();

  const without: number[] = [];
  const withPre: number[] = [];
  const clean: number[] = [];
  const redo: number[] = [];
  let port = 16760;
  for (let r = 0; r < runs; r++) {
    for (const pre of [false, true]) {
      await psql(parent.directPort, "CHECKPOINT", { password: pw });
      await sleep(HOT_SECONDS * 1000);
      if (pre) {
        const p = await ok<{ redoDistanceBytes: number }>(parent, "pre-fork");
        redo.push(p.redoDistanceBytes);
      }
      const forkRoot = await root("bfork");
      await frozen(parent, () => copyVolume(`${parentRoot}/data`, `${forkRoot}/data`));
      // A snapshot is durable: the copy's dirty pages are not the fork's to write back.
      await new Deno.Command("sync", { args: ["-f", forkRoot] }).output();
      const fork = await bootToQuery(forkRoot, port, {
        BEYOND_PG_FORK_OF: "vol-parent",
      });
      (pre ? withPre : without).push(fork.ms);
      console.log(
        `  fork ${pre ? "after pre-fork" : "without pre-fork"}: ${fmt(fork.ms)} ms (${
          replayLine(fork.pg)
        })`,
      );
      await fork.pg.stop();
      if (!pre) {
        // A clean restart of the same data (the fork, stopped cleanly above).
        const again = await bootToQuery(forkRoot, port, { BEYOND_PG_FORK_OF: "vol-parent" });
        clean.push(again.ms);
        console.log(`  clean restart: ${fmt(again.ms)} ms (${replayLine(again.pg)})`);
        await again.pg.stop();
      }
      await cleanup(fork.pg);
      await removeRoot(forkRoot);
      port += 3;
    }
  }
  // ---- hot-set coverage: the files a fork boot opens (strace), against `hot-set` ----------
  const coverage = await hotSetCoverage(parent, parentRoot, port);
  pgbench.kill("SIGINT");
  await pgbench.status;
  console.log(coverage.line);
  console.log(`  largest files opened but not in the hot-set: ${coverage.uncovered.join(", ")}`);
  console.log(`pre-fork left a redo distance of ${redo.map((b) => `${b} B`).join(", ")}`);
  report({ name: "fork boot without pre-fork vs clean restart", ours: without, base: clean });
  report({
    name: "fork boot after pre-fork vs clean restart",
    ours: withPre,
    base: clean,
    target: 1.5,
  });

  // ---- handoff ------------------------------------------------------------------------
  await psql(parent.directPort, WORKLOAD_TABLE, { password: pw });
  const front = new Front(16790, parent.port);
  const load = new Workload({ port: front.port, password: pw, clients: 8 });
  load.start();
  const gen2Root = await root("bgen2");
  const gen2 = await start({
    root: gen2Root,
    port: 16791,
    directPort: 16792,
    httpPort: 16793,
    env: { BEYOND_PG_DATA_ROOT: `${parentRoot}/data`, BEYOND_PG_LOCK_WAIT: "300" },
  });
  await gen2.waitFor(/waiting up to 300 s/, 120_000);
  await sleep(1500);
  const t0 = performance.now();
  front.hold();
  const prep = await ok<{ phases: Record<string, number> }>(parent, "handoff-prepare");
  await gen2.waitFor(READY, 120_000);
  front.repoint(gen2.port);
  const t1 = performance.now();
  await parent.stop();
  await sleep(1500);
  await load.stop();
  front.close();
  const stalls = load.stalls(t0, t1);
  console.log(
    `handoff: client-visible pause p50 ${fmt(percentile(stalls, 50))} ms, max ${
      fmt(Math.max(...stalls))
    } ms (target ≤ 1000 ms: ${
      Math.max(...stalls) <= 1000 ? "PASS" : "FAIL"
    }); failed transactions ${load.failed.length}; in flight at the handoff (retried) ${load.inFlightLost.length}; ` +
      `prepare ${JSON.stringify(prep.phases)}; hold→re-point ${fmt(t1 - t0)} ms; next generation ${
        gen2.lines.find((l) => /startup phases/.test(l))?.replace(/.*startup phases: /, "")
      }`,
  );

  // ---- idle supervisor -----------------------------------------------------------------
  const off = await idleUsage(gen2);
  const watchRoot = await root("bidle");
  const watched = await bootToQuery(watchRoot, 16794, { BEYOND_PG_IDLE_SHUTDOWN: "3600" });
  await sleep(2000);
  const on = await idleUsage(watched.pg);
  console.log(
    `idle supervisor over 10 s: watcher on ${on.rssMb.toFixed(1)} MB RSS, ${
      on.cpuPct.toFixed(2)
    }% CPU; off ${off.rssMb.toFixed(1)} MB, ${off.cpuPct.toFixed(2)}% CPU → RSS ${
      (on.rssMb / off.rssMb).toFixed(2)
    }×`,
  );
  console.log(
    `(medians: fork ${fmt(median(without))}/${fmt(median(withPre))} ms, clean ${
      fmt(median(clean))
    } ms)`,
  );
} finally {
  await cleanup(...instances);
  for (const r of roots) await removeRoot(r);
}
