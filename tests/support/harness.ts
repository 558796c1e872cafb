/**
 * Integration harness: runs the real supervisor (a subprocess, `deno run main.ts`) on a temp
 * data root with free loopback ports, collects its output, and cleans up — every process it
 * started (and their descendants) by PID, and the temp dirs — even when a test fails.
 */
import { repoRoot } from "./paths.ts";

export const deno = Deno.execPath();
export const mainTs = `${repoRoot}/main.ts`;

/**
 * How to run beyond-pg: the built artifact when BEYOND_PG_TEST_BIN names one (the bench and
 * the build test do), else `deno run main.ts`.
 */
export function beyondPgCommand(args: string[]): { cmd: string; args: string[] } {
  const bin = Deno.env.get("BEYOND_PG_TEST_BIN");
  if (bin) return { cmd: bin, args };
  return { cmd: deno, args: ["run", "-A", "--quiet", mainTs, ...args] };
}
const decoder = new TextDecoder();

/** Run `beyond-pg ARGS` with an instance's environment (as an operator beside it would). */
export async function cliAs(
  pg: { env: Record<string, string> },
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const c = beyondPgCommand(args);
  const out = await new Deno.Command(c.cmd, {
    args: c.args,
    env: pg.env,
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

const handedOut = new Set<number>();

/**
 * A loopback port nobody listens on, never one this process handed out before: the kernel may
 * give the same ephemeral port to two listen-and-close probes in a row (a loaded run gave a
 * restore the same port for 5432 and 5433).
 */
export function freePort(): number {
  const range = portRange();
  if (range) {
    // A shared machine gives each engineer a band (BEYOND_PG_TEST_PORTS=16500-16699): probe it
    // from a random start, so that consecutive runs do not reuse the same ports first.
    const [lo, hi] = range;
    const span = hi - lo + 1;
    const start = Math.floor(Math.random() * span);
    for (let i = 0; i < span; i++) {
      const port = lo + ((start + i) % span);
      if (handedOut.has(port)) continue;
      try {
        Deno.listen({ hostname: "127.0.0.1", port }).close();
      } catch {
        continue;
      }
      handedOut.add(port);
      return port;
    }
    throw new Error(`no free port left in BEYOND_PG_TEST_PORTS=${lo}-${hi}`);
  }
  for (;;) {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
}

function portRange(): [number, number] | undefined {
  const m = Deno.env.get("BEYOND_PG_TEST_PORTS")?.match(/^(\d+)-(\d+)$/);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** A temp root that the postgres user can traverse, removed by `cleanup()`. */
export async function tempRoot(prefix = "bpg-test-"): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.chmod(dir, 0o755);
  return dir;
}

/** All descendants of `pid` (children first found by scanning /proc). */
export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const e of Deno.readDirSync("/proc")) {
    const p = Number(e.name);
    if (!Number.isInteger(p)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      parent.set(p, Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p && !out.includes(child)) {
        out.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return out;
}

export function killPids(pids: number[], sig: Deno.Signal = "SIGKILL"): void {
  for (const p of pids) {
    try {
      Deno.kill(p, sig);
    } catch { /* gone */ }
  }
}

/**
 * Stop (SIGSTOP) every process of `inst`, none escaping: a stopped postmaster forks no more, and a
 * child it forked just before is still its child, so the tree is looked at again until nothing new
 * appears. (One snapshot then a kill let a backend forked in between outlive the test, waiting
 * forever on a lock a killed process held.) Returns the stopped PIDs.
 */
export function freezeTree(inst: Pick<Instance, "pids">): number[] {
  const stopped = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const fresh = inst.pids().filter((p) => !stopped.has(p));
    if (!fresh.length) break;
    killPids(fresh, "SIGSTOP");
    for (const p of fresh) stopped.add(p);
  }
  return [...stopped];
}

/** Every process of `inst` at once (host loss, or cleanup): frozen first, then SIGKILL. */
export function killTree(inst: Pick<Instance, "pids">): number {
  const pids = freezeTree(inst);
  killPids(pids, "SIGKILL");
  return pids.length;
}

export interface Instance {
  root: string;
  env: Record<string, string>;
  port: number;
  directPort: number;
  httpPort: number;
  controlSocket: string;
  password: string;
  socketDir: string;
  pgdata: string;
  proc: Deno.ChildProcess;
  lines: string[];
  /** Resolves with the matching line, or throws after `ms` (or when the process exits). */
  waitFor(pattern: RegExp, ms?: number, from?: number): Promise<string>;
  /** SIGTERM (default) and wait; returns the exit code. */
  stop(sig?: Deno.Signal, ms?: number): Promise<number>;
  exited: Promise<Deno.CommandStatus>;
  /** Every process this instance started that is still around, by PID. */
  pids(): number[];
  /** The harness made `root` (no `root` option): cleanup() removes it. */
  ownsRoot: boolean;
}

export interface StartOptions {
  root?: string;
  env?: Record<string, string>;
  password?: string | null;
  args?: string[];
  /** Ports to reuse (a restart on the same data root). */
  port?: number;
  directPort?: number;
  httpPort?: number;
  /** Keep only output lines matching this (benchmarks that flood the logs). */
  keepLines?: RegExp;
  /** Run under this command (e.g. unshare …): the program becomes its last argument list. */
  wrap?: string[];
}

/** The light manifest most tests use (first-boot tests use the real one). */
export const lightManifest = `${repoRoot}/tests/support/light-extensions.toml`;

export function instanceEnv(
  root: string,
  o: StartOptions & { port: number; directPort: number; httpPort: number },
) {
  const env: Record<string, string> = {
    PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
    BEYOND_PG_DATA_ROOT: `${root}/data`,
    BEYOND_PG_RUN_DIR: `${root}/run`,
    BEYOND_PG_SOCKET_DIR: `${root}/sock`,
    BEYOND_PG_HOOKS_DIR: `${root}/hooks`,
    BEYOND_PG_PORT: String(o.port),
    BEYOND_PG_DIRECT_PORT: String(o.directPort),
    BEYOND_PG_LISTEN_ADDR: "127.0.0.1",
    BEYOND_PG_HTTP: `127.0.0.1:${o.httpPort}`,
    BEYOND_PG_RAM_MB: "1024",
    BEYOND_PG_VCPUS: "2",
    BEYOND_PG_STOP_TIMEOUT: "20",
    BEYOND_PG_EXTENSIONS: lightManifest,
    BEYOND_MMDS_URL: "off",
    DENO_NO_UPDATE_CHECK: "1",
    ...(o.password === null ? {} : { POSTGRES_PASSWORD: o.password ?? "test-secret-1" }),
    ...o.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === "") delete env[k];
  return env;
}

export function startSupervisor(options: StartOptions = {}): Promise<Instance> {
  return (async () => {
    const root = options.root ?? await tempRoot();
    const port = options.port ?? freePort();
    const directPort = options.directPort ?? freePort();
    const httpPort = options.httpPort ?? freePort();
    const env = instanceEnv(root, { ...options, port, directPort, httpPort });
    const command = beyondPgCommand(options.args ?? ["supervisor"]);
    const wrapped = options.wrap
      ? { cmd: options.wrap[0]!, args: [...options.wrap.slice(1), command.cmd, ...command.args] }
      : command;
    const proc = new Deno.Command(wrapped.cmd, {
      args: wrapped.args,
      env,
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const waiters = new Set<() => void>();
    let done = false;
    const pump = (stream: ReadableStream<Uint8Array>) =>
      readLines(stream, (line) => {
        if (!options.keepLines || options.keepLines.test(line)) lines.push(line);
      }, () => {
        for (const w of waiters) w();
      });
    const pumps = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
    const exited = proc.status.then(async (s) => {
      await pumps;
      done = true;
      for (const w of waiters) w();
      return s;
    });
    const known = new Set<number>([proc.pid]);
    const instance: Instance = {
      root,
      ownsRoot: !options.root,
      env,
      port,
      directPort,
      httpPort,
      controlSocket: `${root}/run/control/control.sock`,
      password: env["POSTGRES_PASSWORD"] ?? "",
      socketDir: `${root}/sock`,
      pgdata: `${root}/data/main`,
      proc,
      lines,
      exited,
      pids() {
        for (const p of descendants(proc.pid)) known.add(p);
        return [...known].filter((p) => {
          try {
            const s = Deno.readTextFileSync(`/proc/${p}/stat`);
            return s.slice(s.lastIndexOf(")") + 2)[0] !== "Z";
          } catch {
            return false;
          }
        });
      },
      waitFor(pattern, ms = 30_000, from = 0) {
        return new Promise((resolve, reject) => {
          const check = () => {
            const hit = lines.slice(from).find((l) => pattern.test(l));
            if (hit !== undefined) {
              cleanupWaiter();
              resolve(hit);
            } else if (done) {
              cleanupWaiter();
              reject(
                new Error(`exited before ${pattern}; output:\n${lines.slice(-30).join("\n")}`),
              );
            }
          };
          const timer = setTimeout(() => {
            cleanupWaiter();
            reject(
              new Error(
                `timed out waiting for ${pattern}; output:\n${lines.slice(-30).join("\n")}`,
              ),
            );
          }, ms);
          const cleanupWaiter = () => {
            clearTimeout(timer);
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        });
      },
      async stop(sig: Deno.Signal = "SIGTERM", ms = 60_000) {
        instance.pids(); // remember descendants before they are reparented
        try {
          proc.kill(sig);
        } catch { /* exited */ }
        let timer: ReturnType<typeof setTimeout> | undefined;
        const status = await Promise.race([
          exited,
          new Promise<never>((
            _,
            rej,
          ) => (timer = setTimeout(() => rej(new Error("stop timed out")), ms))),
        ]);
        clearTimeout(timer);
        return status.code;
      },
    };
    // Keep track of descendants while it runs, so that cleanup can find reparented ones.
    const tracker = setInterval(() => instance.pids(), 200);
    exited.finally(() => clearInterval(tracker));
    registry.add(instance);
    return instance;
  })();
}

/**
 * A child's output line by line, as it comes (no batching: tests time what they wait for);
 * `afterChunk` runs after each chunk's lines, to wake waiters.
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  afterChunk: () => void,
): Promise<void> {
  const utf8 = new TextDecoder(); // one per stream: it carries a split character across chunks
  let buf = "";
  for await (const chunk of stream) {
    buf += utf8.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    afterChunk();
  }
  if (buf) onLine(buf);
}

const registry = new Set<Instance>();

/**
 * Kill everything any instance started (by PID), then remove their temp roots: all are killed
 * first, since a later instance may run on an earlier one's root (a restarted node).
 */
export async function cleanup(...instances: Instance[]): Promise<void> {
  const all = instances.length ? instances : [...registry];
  for (const inst of all) {
    killTree(inst);
    await inst.exited.catch(() => {});
    registry.delete(inst);
  }
  for (const inst of all) if (inst.ownsRoot) await removeRoot(inst.root);
}

export async function removeRoot(root: string): Promise<void> {
  await Deno.remove(root, { recursive: true }).catch(() => {});
}

/** Run SQL with psql (a real client); throws with stderr on failure. */
export async function psql(
  port: number,
  sql: string,
  o: {
    password?: string;
    user?: string;
    db?: string;
    host?: string;
    env?: Record<string, string>;
  } = {},
): Promise<string> {
  const out = await new Deno.Command("psql", {
    args: [
      "-X",
      "-q",
      "-A",
      "-t",
      "-v",
      "ON_ERROR_STOP=1",
      "-h",
      o.host ?? "127.0.0.1",
      "-p",
      String(port),
      "-U",
      o.user ?? "postgres",
      "-d",
      o.db ?? "postgres",
      "-c",
      sql,
    ],
    env: { PGPASSWORD: o.password ?? "", PGCONNECT_TIMEOUT: "10", ...o.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`psql failed: ${decoder.decode(out.stderr).trim()}`);
  return decoder.decode(out.stdout).trim();
}

/** pg_controldata's "Database cluster state". */
export async function clusterState(pgdata: string): Promise<string> {
  const bin = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name).sort().pop();
  const out = await new Deno.Command(`/usr/lib/postgresql/${bin}/bin/pg_controldata`, {
    args: [pgdata],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return decoder.decode(out.stdout).match(/Database cluster state:\s+(.*)/)?.[1]?.trim() ?? "";
}

export function postmasterPid(pgdata: string): number {
  return Number(Deno.readTextFileSync(`${pgdata}/postmaster.pid`).split("\n")[0]);
}
