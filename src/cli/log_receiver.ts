/**
 * `beyond-pg log-receiver --vsock PORT [--max N]`: what a host agent does with the supervisor's
 * log frames — listen on vsock, decode, print `[vsock-log] #seq source: line`. For debugging and
 * the VM tests (inside a guest, with vsock_loopback, the supervisor sends to CID 1).
 */
import { FfiListener, VMADDR_CID_ANY } from "../../ffi/mod.ts";
import { LogFrameDecoder } from "../logs/frame.ts";

export async function main(args: string[]): Promise<number> {
  const port = Number(args[args.indexOf("--vsock") + 1]);
  const maxIdx = args.indexOf("--max");
  let left = maxIdx >= 0 ? Number(args[maxIdx + 1]) : Infinity;
  if (!Number.isInteger(port) || port <= 0) {
    console.error("usage: beyond-pg log-receiver --vsock PORT [--max N]");
    return 2;
  }
  const listener = new FfiListener({ family: "vsock", cid: VMADDR_CID_ANY, port });
  console.log(`[vsock-log] listening on vsock port ${port}`);
  const buf = new Uint8Array(64 * 1024);
  while (left > 0) {
    const conn = await listener.accept();
    if (!conn) break;
    const decoder = new LogFrameDecoder();
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      for (const f of decoder.push(buf.subarray(0, n))) {
        console.log(`[vsock-log] #${f.seq} ${f.source}: ${f.data}`);
        if (--left <= 0) break;
      }
      if (left <= 0) break;
    }
    conn.close();
  }
  listener.close();
  return 0;
}
