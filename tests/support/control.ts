/** Call a running supervisor's control command over its Unix socket. */
import { ControlClient } from "../../src/rpc/client.ts";
import type { Response } from "../../src/rpc/codec.ts";
import type { Instance } from "./harness.ts";

export async function control(
  pg: Instance,
  cmd: string,
  args: Record<string, unknown> = {},
): Promise<Response> {
  const client = await ControlClient.unix(pg.controlSocket);
  try {
    return await client.call(cmd, args);
  } finally {
    client.close();
  }
}

/** The result of a command that must succeed. */
export async function ok<T = Record<string, unknown>>(
  pg: Instance,
  cmd: string,
  args: Record<string, unknown> = {},
): Promise<T> {
  const res = await control(pg, cmd, args);
  if (!res.ok) throw new Error(`${cmd} failed: ${res.error.code}: ${res.error.message}`);
  return res.result as T;
}

export async function http(pg: Instance, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${pg.httpPort}${path}`);
  return { status: res.status, body: await res.text() };
}
