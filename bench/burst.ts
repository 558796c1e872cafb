/**
 * A burst of clients while PgBouncer is busy (a wake, the end of a handoff's pause, a fleet
 * reconnecting): N clients connect to 5432 at once while PgBouncer is stopped for STALL ms (the
 * stand-in for a busy single-threaded PgBouncer), and each waits for PgBouncer's first answer
 * (to an SSLRequest). Side by side in alternating rounds on one database: our PgBouncer
 * (listen_backlog sized from the VM) against a second PgBouncer with the same configuration but
 * the stock accept queue (128), beside it on another port. Past the accept queue the kernel drops
 * a SYN and that client's connect takes 1 s more (then 3 s, 7 s…).
 *
 *   deno run -A bench/burst.ts [--runs N]   (3 rounds each by default; root: PgBouncer runs as
 *                                          `postgres`)
 */
import { cleanup, freePort, startSupervisor, tempRoot } from "../tests/support/harness.ts";
import { median, runsFromArgs, sh } from "./lib.ts";

const CLIENTS = 600;
const STALL_MS = 300;
const rounds = runsFromArgs(3);

const pgbouncerBin = (await sh("sh", ["-c", "command -v pgbouncer || echo /usr/sbin/pgbouncer"]))
  .trim();
const pgUser = Deno.uid() === 0
  ? {
    uid: Number((await sh("id", ["-u", "postgres"])).trim()),
    gid: Number((await sh("id", ["-g", "postgres"])).trim()),
  }
  : {};

async function burst(port: number, pid: number): Promise<number[]> {
  Deno.kill(pid, "SIGSTOP");
  const resume = setTimeout(() => Deno.kill(pid, "SIGCONT"), STALL_MS);
  const t0 = performance.now();
  try {
    const times = await Promise.all(Array.from({ length: CLIENTS }, async () => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await c.write(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47])); // SSLRequest
        await c.read(new Uint8Array(1));
        return performance.now() - t0;
      } finally {
        c.close();
      }
    }));
    return times.sort((a, b) => a - b);
  } finally {
    clearTimeout(resume);
    Deno.kill(pid, "SIGCONT");
  }
}

const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

const pg = await startSupervisor({ password: "bench-burst" });
let stock: Deno.ChildProcess | undefined;
const dir = await tempRoot("bpg-burst-");
try {
  await pg.waitFor(/\] ready:/, 90_000);
  const ours = Number(Deno.readTextFileSync(`${pg.root}/run/pgbouncer/pgbouncer.pid`).trim());
  const ini = Deno.readTextFileSync(`${pg.root}/run/pgbouncer/pgbouncer.ini`);
  const backlog = ini.match(/^listen_backlog = (\d+)$/m)?.[1] ?? "128";
  // The same configuration with PgBouncer's stock accept queue, on its own port and files.
  const stockPort = freePort();
  Deno.mkdirSync(`${dir}/sock`, { mode: 0o755 });
  if (pgUser.uid !== undefined) Deno.chownSync(`${dir}/sock`, pgUser.uid, pgUser.gid);
  const stockIni = ini
    .replace(/^listen_backlog = .*\n/m, "")
    .replace(/^listen_port = .*$/m, `listen_port = ${stockPort}`)
    .replace(/^unix_socket_dir = .*$/m, `unix_socket_dir = ${dir}/sock`)
    .replace(/^pidfile = .*$/m, `pidfile = ${dir}/sock/pgbouncer.pid`);
  Deno.writeTextFileSync(`${dir}/pgbouncer.ini`, stockIni, { mode: 0o644 });
  stock = new Deno.Command(pgbouncerBin, {
    args: [`${dir}/pgbouncer.ini`],
    ...pgUser,
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port: stockPort })).close();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const oursP90: number[] = [], stockP90: number[] = [];
  const oursMax: number[] = [], stockMax: number[] = [];
  let oursLate = 0, stockLate = 0;
  for (let r = 0; r < rounds; r++) {
    const a = await burst(pg.port, ours);
    await new Promise((res) => setTimeout(res, 500));
    const b = await burst(stockPort, stock.pid);
    await new Promise((res) => setTimeout(res, 500));
    oursP90.push(q(a, 0.9));
    stockP90.push(q(b, 0.9));
    oursMax.push(q(a, 1));
    stockMax.push(q(b, 1));
    oursLate += a.filter((t) => t > 1000).length;
    stockLate += b.filter((t) => t > 1000).length;
    console.log(
      `round ${r}: ours p50 ${q(a, 0.5).toFixed(0)} p90 ${q(a, 0.9).toFixed(0)} max ${
        q(a, 1).toFixed(0)
      } ms | stock p50 ${q(b, 0.5).toFixed(0)} p90 ${q(b, 0.9).toFixed(0)} max ${
        q(b, 1).toFixed(0)
      } ms`,
    );
  }
  console.log(
    `# ${CLIENTS} clients at once, PgBouncer stalled ${STALL_MS} ms, ${rounds} rounds each (alternating)`,
  );
  console.log(
    `burst → answered, p90: ours (listen_backlog ${backlog}) ${
      median(oursP90).toFixed(0)
    } ms vs stock accept queue (128) ${median(stockP90).toFixed(0)} ms → ${
      (median(oursP90) / median(stockP90)).toFixed(2)
    }×; max ${median(oursMax).toFixed(0)} vs ${
      median(stockMax).toFixed(0)
    } ms; clients answered after > 1 s: ${oursLate} vs ${stockLate} of ${CLIENTS * rounds}`,
  );
  await pg.stop();
} finally {
  if (stock) {
    try {
      stock.kill("SIGTERM");
    } catch { /* gone */ }
    await stock.status;
  }
  await cleanup(pg);
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
