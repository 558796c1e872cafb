/**
 * A connection flood from an unprivileged local user (`nobody`): a Deno process that opens
 * `count` TCP connections to a loopback port and keeps each open and silent until the server
 * closes it; then, with `redialMs`, dials again after that pause (a flood that keeps up its
 * pressure). `trickle` of them send one byte a second instead of nothing (a slow client).
 * It reports its counts on stdout once a second. Stopped by PID (`stop()`), never by name.
 */
import { killPids } from "./harness.ts";

const script = `
const [port, count, redialMs, trickle] = Deno.args.map(Number);
const s = { open: 0, opened: 0, failed: 0, closedByServer: 0 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function hold(i) {
  for (;;) {
    let c;
    try {
      c = await Deno.connect({ hostname: "127.0.0.1", port });
    } catch {
      s.failed++;
      await sleep(200);
      continue;
    }
    s.opened++;
    s.open++;
    const drip = i < trickle
      ? setInterval(() => c.write(new Uint8Array([71])).catch(() => {}), 1000)
      : undefined;
    const buf = new Uint8Array(256);
    try {
      while ((await c.read(buf)) !== null) { /* silent: ignore what comes */ }
    } catch { /* reset */ }
    clearInterval(drip);
    try { c.close(); } catch { /* closed */ }
    s.open--;
    s.closedByServer++;
    if (redialMs <= 0) return;
    await sleep(redialMs);
  }
}
for (let i = 0; i < count; i++) hold(i);
setInterval(() => console.log(JSON.stringify(s)), 1000);
`;

export interface FloodStats {
  open: number;
  opened: number;
  failed: number;
  closedByServer: number;
}

export interface Flood {
  pid: number;
  /** The latest report (zeros until the first). */
  stats: FloodStats;
  /** Resolves once a report satisfies `ok`, or throws after `ms`. */
  until(ok: (s: FloodStats) => boolean, ms: number): Promise<FloodStats>;
  stop(): Promise<void>;
}

export async function startFlood(
  port: number,
  o: { count: number; redialMs?: number; trickle?: number },
): Promise<Flood> {
  const dir = await Deno.makeTempDir({ prefix: "bpg-flood-" });
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(`${dir}/flood.js`, script);
  await Deno.mkdir(`${dir}/deno`);
  await Deno.chown(`${dir}/deno`, 65534, 65534);
  const proc = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net=127.0.0.1",
      `${dir}/flood.js`,
      String(port),
      String(o.count),
      String(o.redialMs ?? 0),
      String(o.trickle ?? 0),
    ],
    uid: 65534,
    gid: 65534,
    clearEnv: true,
    env: { DENO_DIR: `${dir}/deno`, HOME: dir, DENO_NO_UPDATE_CHECK: "1" },
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stats: FloodStats = { open: 0, opened: 0, failed: 0, closedByServer: 0 };
  const waiters = new Set<() => void>();
  const reading = (async () => {
    let buf = "";
    for await (const chunk of proc.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        Object.assign(stats, JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        for (const w of waiters) w();
      }
    }
  })();
  let stopped = false;
  return {
    pid: proc.pid,
    stats,
    until(ok, ms) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!ok(stats)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve({ ...stats });
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`flood: timed out at ${JSON.stringify(stats)}`));
        }, ms);
        waiters.add(check);
        check();
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      killPids([proc.pid], "SIGKILL");
      await proc.status;
      await reading.catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
