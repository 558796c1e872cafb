/** Replication test helpers: a primary and its replicas on loopback, each with its own root. */
import { ok } from "./control.ts";
import { type Instance, psql, type StartOptions, startSupervisor } from "./harness.ts";

export const REPL_PASSWORD = "repl-secret-9f2";
export const READY = /\[beyond-pg\] ready:/;

/** The settings every node of one test cluster shares. */
export function replEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    BEYOND_PG_REPLICATION_PASSWORD: REPL_PASSWORD,
    BEYOND_PG_REPLICATION_PEERS: "127.0.0.1",
    BEYOND_PG_REPLICATION_LISTEN: "127.0.0.1",
    ...extra,
  };
}

export function startPrimary(
  name: string,
  env: Record<string, string> = {},
  o: StartOptions = {},
): Promise<Instance> {
  return startSupervisor({
    ...o,
    env: replEnv({ BEYOND_PG_TIER: "primary", BEYOND_PG_STANDBY_NAME: name, ...env }),
  });
}

export function startReplica(
  name: string,
  primary: Instance | number,
  env: Record<string, string> = {},
  o: StartOptions = {},
): Promise<Instance> {
  const port = typeof primary === "number" ? primary : primary.directPort;
  return startSupervisor({
    ...o,
    env: replEnv({
      BEYOND_PG_TIER: "replica",
      BEYOND_PG_STANDBY_NAME: name,
      BEYOND_PG_PRIMARY: `127.0.0.1:${port}`,
      ...env,
    }),
  });
}

/** SQL on a node's direct port as postgres. */
export function sql(node: Instance, text: string, password = "test-secret-1"): Promise<string> {
  return psql(node.directPort, text, { password });
}

/** Wait until `fn` is true (polling), or throw naming `what`. */
export async function until(
  what: string,
  fn: () => Promise<boolean> | boolean,
  ms = 30_000,
  every = 100,
): Promise<void> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      if (await fn()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, every));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
}

export interface ReplStatus {
  role: string;
  inRecovery?: boolean;
  timeline?: number;
  lsn?: string;
  primary?: string;
  standbys?: { name: string; state: string; syncState: string; flushLsn: string | null }[];
  sync?: { met: boolean; problem?: string; waitingCommits: number };
  receiver?: { status: string; receivedLsn: string | null; replayLsn: string | null };
}

export async function replStatus(node: Instance): Promise<ReplStatus> {
  return await ok<ReplStatus>(node, "replication");
}

/** A standby named `name` streams from `primary`. */
export function streaming(primary: Instance, name: string, ms = 60_000): Promise<void> {
  return until(
    `${name} streaming from the primary`,
    async () => {
      const s = await replStatus(primary);
      return !!s.standbys?.some((x) => x.name === name && x.state === "streaming");
    },
    ms,
    200,
  );
}

export function lsnValue(text: string | null | undefined): bigint {
  const [hi, lo] = (text ?? "0/0").split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}
