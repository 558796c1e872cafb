/** Benchmark helpers: medians, side-by-side tables, and timing of real commands. */
import { RGW_DIR, s3Client } from "../tests/support/s3.ts";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function fmt(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms.toFixed(1);
}

export interface Row {
  name: string;
  ours: number[];
  base: number[];
  target?: number;
  unit?: string;
}

/** Print one comparison row: medians, ratio, target verdict. */
export function report(row: Row): { ratio: number; pass: boolean | undefined } {
  const mo = median(row.ours);
  const mb = median(row.base);
  const ratio = mo / mb;
  const pass = row.target === undefined ? undefined : ratio <= row.target;
  const unit = row.unit ?? "ms";
  console.log(
    `${row.name}: ours ${fmt(mo)} ${unit} vs baseline ${
      fmt(mb)
    } ${unit} (medians of ${row.ours.length}) → ${ratio.toFixed(2)}×${
      row.target === undefined ? "" : ` (target ≤ ${row.target}×: ${pass ? "PASS" : "FAIL"})`
    }`,
  );
  console.log(`  ours: ${row.ours.map(fmt).join(" ")}  baseline: ${row.base.map(fmt).join(" ")}`);
  return { ratio, pass };
}

const decoder = new TextDecoder();

export async function sh(
  cmd: string,
  args: string[],
  o: { env?: Record<string, string>; uid?: number; gid?: number; check?: boolean } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, {
    args,
    env: o.env,
    uid: o.uid,
    gid: o.gid,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if ((o.check ?? true) && !out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${decoder.decode(out.stderr)}`);
  }
  return decoder.decode(out.stdout);
}

export function runsFromArgs(fallback = 5): number {
  const i = Deno.args.indexOf("--runs");
  return i >= 0 ? Number(Deno.args[i + 1]) : Number(Deno.env.get("BENCH_RUNS") ?? fallback);
}

/** Delete these buckets and what they hold, then have radosgw collect the space now. */
export async function emptyBuckets(buckets: string[]): Promise<void> {
  for (const bucket of buckets) {
    const client = s3Client(bucket);
    for (const o of await client.list("")) await client.delete(o.key);
    await client.request("DELETE", "").then((r) => r.body?.cancel()).catch(() => {});
  }
  // radosgw's garbage collection runs where radosgw does: not inside a test lane's chroot.
  if (Deno.env.get("BEYOND_TEST_LANE")) return;
  await sh("radosgw-admin", [
    "-n",
    "client.rgw",
    "--admin-socket=",
    "gc",
    "process",
    "--include-all",
  ], {
    env: { CEPH_CONF: `${RGW_DIR}/ceph.conf`, PATH: Deno.env.get("PATH") ?? "" },
    check: false,
  });
}

/** Wall time of one run of a command in a clean environment; throws when it fails. */
export async function timeCommand(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<number> {
  const t = performance.now();
  const o = await new Deno.Command(cmd, { args, env, clearEnv: true }).output();
  if (!o.success) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${o.code})`);
  return performance.now() - t;
}

/**
 * `beyond-pg archive` without a target (postgres runs it once per WAL segment): the arguments
 * and environment both benchmarks time it with.
 */
export const ARCHIVE_NO_TARGET = {
  args: ["archive", "/nonexistent/x", "000000010000000000000001"],
  env: { BEYOND_PG_RUN_DIR: "/nonexistent-run" },
};

/**
 * The runtime's own floor: the built Deno (dist/deno) with the launcher's V8 flags on an empty
 * program. `time()` is one run; `remove()` deletes the empty program.
 */
export async function denoFloor(
  repo: string,
): Promise<{ time: () => Promise<number>; remove: () => Promise<void> }> {
  const empty = await Deno.makeTempFile({ suffix: ".js" });
  const flags = Deno.readTextFileSync(`${repo}/dist/beyond-pg`).match(/--v8-flags=\S+/)?.[0];
  const args = [
    "run",
    "-A",
    ...(flags ? [flags] : []),
    "--no-config",
    "--no-lock",
    "--quiet",
    empty,
  ];
  return {
    time: () => timeCommand(`${repo}/dist/deno`, args, { DENO_NO_UPDATE_CHECK: "1" }),
    remove: () => Deno.remove(empty),
  };
}

/** The newest PostgreSQL's client programs here (the server the benchmarks run). */
export const binDir = `/usr/lib/postgresql/${
  [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name).sort().pop()
}/bin`;

/** pgbench against an instance's direct port as postgres; its TPS (0 when it prints none). */
export async function pgbench(
  pg: { directPort: number; password: string },
  args: string[],
): Promise<number> {
  return tpsOf(await pgbenchOutput(pg, args));
}

export function tpsOf(pgbenchOutput: string): number {
  return Number(pgbenchOutput.match(/tps = ([\d.]+)/)?.[1] ?? 0);
}

/** pgbench against an instance's direct port as postgres; what it printed. */
export function pgbenchOutput(
  pg: { directPort: number; password: string },
  args: string[],
): Promise<string> {
  return sh(`${binDir}/pgbench`, [
    "-h",
    "127.0.0.1",
    "-p",
    String(pg.directPort),
    "-U",
    "postgres",
    ...args,
    "postgres",
  ], { env: { PGPASSWORD: pg.password } });
}
