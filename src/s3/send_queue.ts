/**
 * How many bytes the kernel still holds for a TCP connection (written by us, not yet
 * acknowledged by the peer): `tx_queue` in /proc/net/tcp (Linux). An upload into a slow store
 * is otherwise invisible from our end while the socket buffer drains: the kernel wakes a
 * blocked write only once a third of the buffer is free (with Linux's 4 MiB cap, ~1.4 MiB: 24 s
 * at 60 kB/s), and after the last write returns up to the whole buffer may still be on its way.
 * The queue shrinking is the store reading. Undefined where the table cannot be read (not
 * Linux, no permission): then only our own writes count as progress.
 */

/** The connection's tx_queue in a /proc/net/tcp{,6} table, or undefined if it is not there. */
export function parseTxQueue(
  table: string,
  localPort: number,
  remotePort: number,
): number | undefined {
  for (const line of table.split("\n")) {
    // "  3: 0100007F:9C40 0100007F:1D38 01 00000000:00000000 ..."
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || !f[0]!.endsWith(":")) continue;
    const local = parseInt(f[1]!.split(":")[1] ?? "", 16);
    const remote = parseInt(f[2]!.split(":")[1] ?? "", 16);
    if (local !== localPort || remote !== remotePort) continue;
    const tx = parseInt(f[4]!.split(":")[0] ?? "", 16);
    return Number.isNaN(tx) ? undefined : tx;
  }
  return undefined;
}

let readable = Deno.build.os === "linux";

/** The bytes `conn` still has to send, or undefined when that cannot be known. */
export async function sendQueue(conn: Deno.Conn): Promise<number | undefined> {
  if (!readable) return undefined;
  let local: Deno.NetAddr, remote: Deno.NetAddr;
  try {
    local = conn.localAddr as Deno.NetAddr;
    remote = conn.remoteAddr as Deno.NetAddr;
  } catch {
    return undefined; // closed
  }
  if (local.transport !== "tcp") return undefined;
  const table = local.hostname.includes(":") ? "/proc/net/tcp6" : "/proc/net/tcp";
  try {
    return parseTxQueue(await Deno.readTextFile(table), local.port, remote.port);
  } catch (error) {
    // Not Linux after all, or no read permission: do not ask again.
    if (
      error instanceof Deno.errors.NotFound || error instanceof Deno.errors.NotCapable ||
      error instanceof Deno.errors.PermissionDenied
    ) readable = false;
    return undefined;
  }
}
