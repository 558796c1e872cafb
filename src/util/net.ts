/** Small network checks. */

/** Does something accept connections on this Unix socket? */
export async function canConnectUnix(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
