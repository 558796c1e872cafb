/**
 * Issue 4 benchmark, side by side in one run:
 *   - `health` round trip over the control Unix socket vs `psql -c 'select 1'` on 5433
 *     (and the CLI `beyond-pg control health` vs psql, both whole processes);
 *   - the log forwarder's cost: pgbench TPS with log_statement=all, forwarding on vs off
 *     (off = children write to our stderr directly). Target ≥ 0.95.
 */
import { ControlClient } from "../src/rpc/client.ts";
import { cleanup, psql, startSupervisor } from "../tests/support/harness.ts";
import { median, report, runsFromArgs, sh } from "./lib.ts";

const runs = runsFromArgs(5);
const READY = /\[beyond-pg\] ready:/;
const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
await sh(Deno.execPath(), ["task", "--quiet", "build"], {
  env: { PATH: Deno.env.get("PATH") ?? "" },
});
Deno.env.set("BEYOND_PG_TEST_BIN", `${repo}/dist/beyond-pg`);
const pgbench = `/usr/lib/postgresql/${
  [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name).sort().pop()
}/bin/pgbench`;

console.log(`# beyond-pg operator-surface benchmark (${runs} rounds; dist/beyond-pg)`);
{
  const pg = await startSupervisor({ keepLines: /^\[beyond-pg\]/ });
  try {
    await pg.waitFor(READY);
    const ours: number[] = [];
    const base: number[] = [];
    const cliOurs: number[] = [];
    for (let round = 0; round < runs; round++) {
      for (let i = 0; i < 20; i++) {
        let t = performance.now();
        const c = await ControlClient.unix(pg.controlSocket);
        const res = await c.call("health");
        c.close();
        if (!res.ok) throw new Error("health failed");
        ours.push(performance.now() - t);
        t = performance.now();
        await psql(pg.directPort, "select 1", { password: pg.password });
        base.push(performance.now() - t);
      }
      const t = performance.now();
      await sh(`${repo}/dist/beyond-pg`, ["control", "health", "--socket", pg.controlSocket]);
      cliOurs.push(performance.now() - t);
    }
    report({
      name:
        "health round trip (connect + request + SELECT 1 + reply) vs psql -c 'select 1' on 5433",
      ours,
      base,
    });
    report({
      name: "`beyond-pg control health` (a whole process) vs psql -c 'select 1'",
      ours: cliOurs,
      base: base.slice(0, cliOurs.length),
    });
  } finally {
    await cleanup(pg);
  }
}

async function tps(capture: boolean): Promise<number> {
  const pg = await startSupervisor({
    keepLines: /^\[beyond-pg\]/,
    env: { BEYOND_PG_LOG_CAPTURE: String(capture) },
  });
  try {
    await pg.waitFor(READY);
    Deno.writeTextFileSync(`${pg.pgdata}/conf.d/99-user.conf`, "log_statement = 'all'\n");
    await psql(pg.directPort, "select pg_reload_conf()", { password: pg.password });
    const env = { PGPASSWORD: pg.password, PATH: Deno.env.get("PATH") ?? "" };
    const common = ["-h", "127.0.0.1", "-p", String(pg.directPort), "-U", "postgres"];
    await sh(pgbench, ["-i", "-q", "-s", "2", ...common, "postgres"], { env });
    const out = await sh(pgbench, [
      "-n",
      "-c",
      "4",
      "-j",
      "2",
      "-T",
      "8",
      "-M",
      "prepared",
      ...common,
      "postgres",
    ], { env });
    const m = out.match(/tps = ([\d.]+)/);
    if (!m) throw new Error(`no tps in pgbench output: ${out}`);
    return Number(m[1]);
  } finally {
    await cleanup(pg);
  }
}

const on: number[] = [];
const off: number[] = [];
for (let i = 0; i < Math.max(3, Math.min(runs, 5)); i++) {
  off.push(await tps(false));
  on.push(await tps(true));
}
const ratio = median(on) / median(off);
console.log(
  `pgbench TPS with log_statement=all: forwarding on ${median(on).toFixed(0)} vs off ${
    median(off).toFixed(0)
  } (medians of ${on.length}) → ${ratio.toFixed(3)} (target ≥ 0.95: ${
    ratio >= 0.95 ? "PASS" : "FAIL"
  })`,
);
console.log(
  `  on: ${on.map((x) => x.toFixed(0)).join(" ")}  off: ${off.map((x) => x.toFixed(0)).join(" ")}`,
);
