/**
 * Issue 2 benchmark: supervisor start → first query through 5432, against bare postgres
 * tooling on the same data directory, side by side in one run (alternating, medians).
 *
 *   warm start:  supervisor on an existing volume      vs  pg_ctl start -w + first query
 *                (the wake path, issue 16); beside both the floor: bare `postgres` exec →
 *                "ready to accept connections" → first query on the same data and config
 *   first boot:  supervisor on an empty volume         vs  initdb + pg_ctl start -w + first query
 *   idle RSS:    the supervisor's peak RSS after boot  (target ≤ 60 MB)
 *   a command:   `beyond-pg archive` without a target (once per WAL segment) vs Deno on an
 *                empty program (the runtime's floor)
 *
 * Usage: deno run -A bench/startup.ts [--runs N] [--warm] [--before DIST/beyond-pg]
 *        (root: postgres runs as `postgres`; --warm: the warm start only; --before: another
 *        build of beyond-pg, e.g. the parent commit's, run as one more warm-start arm)
 */
import {
  cleanup,
  freePort,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "../tests/support/harness.ts";
import {
  ARCHIVE_NO_TARGET,
  denoFloor,
  fmt,
  median,
  report,
  runsFromArgs,
  sh,
  timeCommand,
} from "./lib.ts";

const runs = runsFromArgs(5);
const warmOnly = Deno.args.includes("--warm");
const beforeAt = Deno.args.indexOf("--before");
const before = beforeAt >= 0 ? Deno.args[beforeAt + 1] : undefined;
// Measure what the image runs: the built artifact (compiled, or bundle + launcher).
const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
await sh(Deno.execPath(), ["task", "--quiet", "build"], {
  env: { PATH: Deno.env.get("PATH") ?? "" },
});
const ourBin = `${repo}/dist/beyond-pg`;
Deno.env.set("BEYOND_PG_TEST_BIN", ourBin);
const artifact = Deno.readTextFileSync(`${repo}/dist/BUILD`).trim();
const READY = /\[beyond-pg\] ready:/;
const binDir = `/usr/lib/postgresql/${
  [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name).sort().pop()
}/bin`;
const pgUser = (() => {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith("postgres:")
  );
  const f = line?.split(":") ?? [];
  return Deno.uid() === 0 && line ? { uid: Number(f[2]), gid: Number(f[3]) } : {};
})();
const benchEnv = { BEYOND_PG_EXTENSIONS: "" }; // the real manifest

async function supervisorToQuery(
  root: string,
  port: number,
  directPort: number,
  password: string,
  env: Record<string, string> = {},
  bin = ourBin,
) {
  Deno.env.set("BEYOND_PG_TEST_BIN", bin);
  const t0 = performance.now();
  const pg = await startSupervisor({
    root,
    port,
    directPort,
    password,
    env: { ...benchEnv, ...env },
  });
  try {
    await pg.waitFor(READY, 120_000);
    await psql(port, "select 1", { password });
    const ms = performance.now() - t0;
    const rss = Deno.readTextFileSync(`/proc/${pg.proc.pid}/status`);
    const hwm = Number(rss.match(/VmHWM:\s+(\d+)/)?.[1] ?? 0) / 1024;
    // Of the resident set: anonymous (heap, stacks: what the VM pays for) and file-backed
    // (the Deno binary's text pages touched: clean, dropped under memory pressure).
    const rollup = Deno.readTextFileSync(`/proc/${pg.proc.pid}/smaps_rollup`);
    const kb = (k: string) => Number(rollup.match(new RegExp(`^${k}:\\s+(\\d+)`, "m"))?.[1] ?? 0);
    const anonMb = kb("Anonymous") / 1024;
    const fileMb = (kb("Rss") - kb("Anonymous")) / 1024;
    const phases = Object.fromEntries(
      (pg.lines.find((l) => /startup phases:/.test(l)) ?? "").replace(/.*startup phases: /, "")
        .split(" ").filter((kv) => kv.includes("=")).map((kv) => {
          const [k, v] = kv.split("=");
          return [k!, Number(v)];
        }),
    );
    if ((await pg.stop()) !== 0) throw new Error("supervisor did not stop cleanly");
    return { ms, hwmMb: hwm, anonMb, fileMb, phases };
  } finally {
    await cleanup(pg);
  }
}

async function pgCtlToQuery(pgdata: string, directPort: number, password: string, init?: string) {
  const t0 = performance.now();
  if (init) {
    await sh(`${binDir}/initdb`, [
      "-D",
      pgdata,
      "--username=postgres",
      "--auth=scram-sha-256",
      `--pwfile=${init}`,
      "--encoding=UTF8",
      "--locale=C.UTF-8",
    ], pgUser);
  }
  await sh(`${binDir}/pg_ctl`, [
    "-D",
    pgdata,
    "-w",
    "-l",
    "/dev/null",
    "-o",
    `-p ${directPort} -k /tmp -c listen_addresses=127.0.0.1`,
    "start",
  ], pgUser);
  await psql(directPort, "select 1", { password });
  const ms = performance.now() - t0;
  await sh(`${binDir}/pg_ctl`, ["-D", pgdata, "-m", "fast", "-w", "stop"], pgUser);
  return ms;
}

/**
 * The floor: `postgres -D` on the same data and configuration (what the supervisor wrote),
 * exec → "ready to accept connections" on its stderr → the first query on its port.
 */
async function floorToQuery(pgdata: string, directPort: number, password: string) {
  const t0 = performance.now();
  const proc = new Deno.Command(`${binDir}/postgres`, {
    args: ["-D", pgdata],
    cwd: pgdata,
    ...pgUser,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let readyMs = 0;
  const reader = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (!readyMs) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`postgres exited before ready: ${buf.slice(-500)}`);
    buf += value;
    if (buf.includes("ready to accept connections")) readyMs = performance.now() - t0;
  }
  const drain = (async () => {
    while (!(await reader.read()).done) { /* drain */ }
  })();
  await psql(directPort, "select 1", { password });
  const ms = performance.now() - t0;
  proc.kill("SIGINT");
  await proc.status;
  await drain;
  return { readyMs, ms };
}

function phaseLine(p: Record<string, number[]>): string {
  return Object.entries(p).map(([k, v]) => `${k}=${fmt(median(v))}`).join(" ");
}

const password = "bench-secret";
const root = await tempRoot("bpg-bench-");
try {
  // ---- warm start on one volume, alternating -------------------------------------------
  const port = freePort();
  const directPort = freePort();
  await supervisorToQuery(root, port, directPort, password); // first boot, not measured
  const warmOurs: number[] = [];
  const warmBase: number[] = [];
  const floorReady: number[] = [];
  const floorQuery: number[] = [];
  const warmBefore: number[] = [];
  const beforePhases: Record<string, number[]> = {};
  const phases: Record<string, number[]> = {};
  const hwm: number[] = [];
  const anon: number[] = [];
  const file: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await supervisorToQuery(root, port, directPort, password);
    warmOurs.push(r.ms);
    hwm.push(r.hwmMb);
    anon.push(r.anonMb);
    file.push(r.fileMb);
    for (const [k, v] of Object.entries(r.phases)) (phases[k] ??= []).push(v);
    warmBase.push(await pgCtlToQuery(`${root}/data/main`, directPort, password));
    const f = await floorToQuery(`${root}/data/main`, directPort, password);
    floorReady.push(f.readyMs);
    floorQuery.push(f.ms);
    if (before) {
      const b = await supervisorToQuery(root, port, directPort, password, {}, before);
      warmBefore.push(b.ms);
      for (const [k, v] of Object.entries(b.phases)) (beforePhases[k] ??= []).push(v);
    }
  }
  console.log(
    `# beyond-pg startup benchmark (${runs} runs each, alternating; ${binDir}; 1 GiB/2 vCPU tuning; dist/beyond-pg = ${artifact})`,
  );
  report({
    name: "warm start → first query via 5432",
    ours: warmOurs,
    base: warmBase,
    target: 0.6,
  });
  report({
    name: "  floor: postgres exec → first query, vs pg_ctl start -w + query",
    ours: floorQuery,
    base: warmBase,
  });
  report({ name: "  ours vs the floor (exec → first query)", ours: warmOurs, base: floorQuery });
  if (before) {
    report({ name: `  ours vs --before ${before}`, ours: warmOurs, base: warmBefore });
    console.log(`  --before's phases (medians, ms): ${phaseLine(beforePhases)}`);
  }
  console.log(
    `  floor: postgres exec → "ready to accept connections" ${
      fmt(median(floorReady))
    } ms median; supervisor phases (medians, ms): ${phaseLine(phases)}`,
  );
  // ---- a command's start: `beyond-pg archive` with no target (postgres runs it once per WAL
  // segment; restore-wal and control start the same way), beside Deno's own floor: the same
  // runtime, flags and launcher cache on an empty program.
  {
    const archive = (bin: string) => () =>
      timeCommand(bin, ARCHIVE_NO_TARGET.args, { ...ARCHIVE_NO_TARGET.env, PATH: "/usr/bin:/bin" });
    const deno = await denoFloor(repo);
    const ours = archive(ourBin);
    const old = before ? archive(before) : undefined;
    await ours(); // its caches warm
    if (old) await old();
    const cmdOurs: number[] = [];
    const cmdFloor: number[] = [];
    const cmdBefore: number[] = [];
    for (let i = 0; i < 20; i++) {
      cmdOurs.push(await ours());
      cmdFloor.push(await deno.time());
      if (old) cmdBefore.push(await old());
    }
    await deno.remove();
    report({
      name: "a command's start: `beyond-pg archive` without a target vs Deno on an empty program",
      ours: cmdOurs,
      base: cmdFloor,
    });
    if (old) report({ name: `  vs --before ${before}`, ours: cmdOurs, base: cmdBefore });
  }
  if (!warmOnly) {
    // ---- first boot on empty volumes, alternating ----------------------------------------
    // The image ships a seed (built by `beyond-pg seed` at image build); build it here the same way.
    const seedDir = `${root}/seed`;
    const t0 = performance.now();
    await sh(`${repo}/dist/beyond-pg`, ["seed"], {
      env: {
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        BEYOND_PG_SEED_DIR: seedDir,
        BEYOND_PG_DATA_ROOT: `${root}/unused`,
        BEYOND_PG_SOCKET_DIR: `${root}/seed-sock`,
        BEYOND_PG_RUN_DIR: `${root}/seed-run`,
        BEYOND_MMDS_URL: "off",
      },
    });
    console.log(`seed build (image build step, once): ${(performance.now() - t0).toFixed(0)} ms`);
    const pwfile = `${root}/pw`;
    Deno.writeTextFileSync(pwfile, password + "\n");
    if (pgUser.uid !== undefined) Deno.chownSync(pwfile, pgUser.uid, pgUser.gid!);
    const firstOurs: number[] = [];
    const firstNoSeed: number[] = [];
    const firstBase: number[] = [];
    for (let i = 0; i < runs; i++) {
      for (
        const [list, env] of [[firstOurs, { BEYOND_PG_SEED_DIR: seedDir }], [
          firstNoSeed,
          {},
        ]] as const
      ) {
        const r1 = `${root}/fb-${i}`;
        Deno.mkdirSync(r1, { mode: 0o755 });
        list.push((await supervisorToQuery(r1, port, directPort, password, env)).ms);
        await Deno.remove(r1, { recursive: true });
      }
      const b1 = `${root}/base-${i}`;
      Deno.mkdirSync(b1, { mode: 0o755 });
      if (pgUser.uid !== undefined) Deno.chownSync(b1, pgUser.uid, pgUser.gid!);
      firstBase.push(await pgCtlToQuery(`${b1}/pgdata`, directPort, password, pwfile));
      await Deno.remove(b1, { recursive: true });
    }
    report({
      name: "first boot (image seed) → first query via 5432",
      ours: firstOurs,
      base: firstBase,
      target: 1.2,
    });
    report({
      name: "first boot without a seed (initdb + CREATE EXTENSION ×7), for reference",
      ours: firstNoSeed,
      base: firstBase,
    });
    const peak = median(hwm);
    console.log(
      `supervisor peak RSS after boot: ${peak.toFixed(1)} MB median (target ≤ 60 MB: ${
        peak <= 60 ? "PASS" : "FAIL"
      }); of it now: ${median(anon).toFixed(1)} MB anonymous, ${
        median(file).toFixed(1)
      } MB file-backed (the Deno binary's text: clean, reclaimable)`,
    );
  }
} finally {
  await removeRoot(root);
}
