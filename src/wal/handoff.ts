/**
 * The archive commands' side of the supervisor hand-off: a request over the archive socket
 * (the control protocol's framing; only `archive` and `restore` of a file *name* — never a
 * path — are served there). Undefined when no supervisor answers: then the command does the
 * work itself.
 */
import { ControlClient } from "../rpc/client.ts";
import type { Response } from "../rpc/codec.ts";

export async function handOff(
  socket: string,
  cmd: "archive" | "restore",
  name: string,
  timeoutMs: number,
): Promise<Response | undefined> {
  let client: ControlClient;
  try {
    client = await ControlClient.unix(socket);
  } catch {
    return undefined; // no supervisor: do it ourselves
  }
  try {
    return await client.call(cmd, { name }, timeoutMs);
  } catch {
    return undefined; // the supervisor went away mid-request
  } finally {
    client.close();
  }
}
