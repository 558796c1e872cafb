/** WAL sink helpers: `beyond-pg wal-sink` processes on loopback, and the host-loss trial. */
import {
  freePort,
  type Instance,
  psql,
  type StartOptions,
  startSupervisor,
  tempRoot,
} from "./harness.ts";
import { REPL_PASSWORD } from "./replication.ts";

export const SINK_TOKEN = "sink-token-0123456789abcdef";

export interface Sink extends Instance {
  name: string;
  sinkPort: number;
  url: string;
  dir: string;
}

export async function startSink(
  name: string,
  primaryDirectPort: number,
  o: { env?: Record<string, string>; root?: string; sinkPort?: number; wrap?: string[] } = {},
): Promise<Sink> {
  const root = o.root ?? await tempRoot("bpg-sink-");
  const sinkPort = o.sinkPort ?? freePort();
  const opts: StartOptions = {
    root,
    args: ["wal-sink"],
    password: null,
    ...(o.wrap ? { wrap: o.wrap } : {}),
    env: {
      BEYOND_PG_PRIMARY: `127.0.0.1:${primaryDirectPort}`,
      BEYOND_PG_STANDBY_NAME: name,
      BEYOND_PG_REPLICATION_PASSWORD: REPL_PASSWORD,
      BEYOND_PG_WAL_SINK_TOKEN: SINK_TOKEN,
      BEYOND_PG_SINK_DIR: `${root}/wal`,
      BEYOND_PG_SINK_HTTP: `127.0.0.1:${sinkPort}`,
      ...o.env,
    },
  };
  const inst = await startSupervisor(opts);
  // The harness owns the root only when it made it; a sink's root is ours to remove.
  (inst as { ownsRoot: boolean }).ownsRoot = !o.root;
  return Object.assign(inst, {
    name,
    sinkPort,
    url: `http://127.0.0.1:${sinkPort}`,
    dir: `${root}/wal`,
  });
}

/** The primary's settings for these sinks. */
export function sinkEnv(sinks: Sink[], quorum = 1): Record<string, string> {
  return {
    BEYOND_PG_WAL_SINK: sinks.map((s) => `${s.name}=${s.url}`).join(","),
    BEYOND_PG_WAL_SINK_TOKEN: SINK_TOKEN,
    BEYOND_PG_WAL_SINK_QUORUM: String(quorum),
    BEYOND_PG_WAL_SINK_WAIT: "4",
  };
}

export async function sinkListing(s: Sink, token = SINK_TOKEN) {
  const res = await fetch(`${s.url}/v1/wal`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`${s.url}/v1/wal: ${res.status} ${await res.text()}`);
  return await res.json() as {
    systemIdentifier: string | null;
    segments: { name: string; bytes: number; partial: boolean }[];
    end: string | null;
  };
}

export function count(node: Instance, table = "acks"): Promise<string> {
  return psql(node.directPort, `SELECT count(*) FROM ${table}`, { password: node.password });
}
