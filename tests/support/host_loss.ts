/**
 * The host-loss trial (issue 14), shared by tests/host_loss_test.ts (a short run) and
 * bench/wal_sink.ts (10 trials): writers record each id once its COMMIT returned; at a random
 * moment the primary's whole process tree is frozen (SIGSTOP), its data root copied (the
 * volume "as it was"), and the tree let go (SIGCONT); 1–5 s later the tree is killed with -9,
 * the old copy put back, and the primary booted again. Every acknowledged id must be there.
 */
import postgres from "postgres";
import {
  freezeTree,
  type Instance,
  killPids,
  killTree,
  type StartOptions,
  startSupervisor,
} from "./harness.ts";
import { READY } from "./replication.ts";

export interface TrialResult {
  acked: number;
  /** Acknowledged ids missing after the boot. */
  lost: number[];
  /** How far back the volume went: the copy, then this long before the kill. */
  rewindMs: number;
  gapFetch: Record<string, unknown> | undefined;
  bootMs: number;
  next: Instance;
}

function client(node: Instance) {
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

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Ids start above what the table holds (trials follow each other on one table). */
export async function hostLossTrial(
  p: Instance,
  o: {
    rand: () => number;
    /** Options to start the primary again with (its env, ports, root). */
    restart: StartOptions;
    /** Called just before the loss (the quorum trial kills a sink here). */
    beforeLoss?: () => Promise<void>;
    writers?: number;
    log?: (line: string) => void;
  },
): Promise<TrialResult> {
  const say = o.log ?? (() => {});
  const db = client(p);
  const [{ max }] = await db`SELECT coalesce(max(id), 0)::bigint AS max FROM acks` as unknown as [
    { max: string },
  ];
  let nextId = Number(max) + 1;
  const acked: number[] = [];
  let dead = false;
  const writer = async () => {
    while (!dead) {
      const id = nextId++;
      try {
        await db`INSERT INTO acks (id, pad) VALUES (${id}, repeat('y', 200))`;
        acked.push(id);
      } catch {
        if (dead) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  const writing = Array.from({ length: o.writers ?? 4 }, writer);
  await new Promise((r) => setTimeout(r, 800 + o.rand() * 1500));

  // The volume "as it was": a copy taken while the whole tree is frozen.
  const data = `${p.root}/data`;
  const snap = `${p.root}/data.snap`;
  const tree = freezeTree(p);
  try {
    await run("cp", ["-a", data, snap]);
  } finally {
    killPids(tree, "SIGCONT");
  }
  const tSnap = performance.now();
  const ackedAtSnap = acked.length;
  await new Promise((r) => setTimeout(r, 1000 + o.rand() * 4000));
  await o.beforeLoss?.();

  // Host loss: everything at once, then the volume comes back as it was.
  killTree(p);
  dead = true;
  const rewindMs = performance.now() - tSnap;
  await Promise.allSettled(writing);
  await p.exited.catch(() => {});
  db.end({ timeout: 0 }).catch(() => {});
  say(
    `volume back ${Math.round(rewindMs)} ms: ${
      acked.length - ackedAtSnap
    } of ${acked.length} acknowledged commits came after the copy`,
  );
  await run("rm", ["-rf", data]);
  await run("mv", [snap, data]);

  const t0 = performance.now();
  const next = await startSupervisor(o.restart);
  await next.waitFor(READY, 120_000);
  const bootMs = performance.now() - t0;
  const db2 = client(next);
  const rows = await db2`SELECT id FROM acks WHERE id > ${Number(max)}`;
  await db2.end({ timeout: 1 });
  const have = new Set(rows.map((r) => Number(r.id)));
  const lost = acked.filter((id) => !have.has(id));
  const { control } = await import("./control.ts");
  const st = await control(next, "status");
  const gapFetch = st.ok
    ? ((st.result as { walSinks?: { gapFetch?: Record<string, unknown> } }).walSinks?.gapFetch)
    : undefined;
  return { acked: acked.length, lost, rewindMs, gapFetch, bootMs, next };
}
