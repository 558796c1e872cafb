/**
 * PURE: who may use control over vsock. Only one CID, the host (2) unless configured
 * (BEYOND_PG_CONTROL_VSOCK_PEER_CID): any process inside the guest can dial its own vsock
 * loopback (CID 1), and control has no other authentication. Refusals are reported at most
 * once a minute with a count, so a local process cannot flood the log with them.
 */
import { type SockPeer, VMADDR_CID_HOST } from "../../ffi/mod.ts";

/** The host, seen from a guest. */
export const HOST_CID = VMADDR_CID_HOST;

export function vsockPeerAllowed(peer: SockPeer | undefined, allowedCid: number): boolean {
  return peer?.family === "vsock" && peer.cid === allowedCid;
}

export class RefusalLog {
  readonly #o: { port: number; allowedCid: number; intervalMs: number };
  #last = -Infinity;
  #count = 0;

  /** `intervalMs`: at most one line this often (default a minute). */
  constructor(o: { port: number; allowedCid: number; intervalMs?: number }) {
    this.#o = { intervalMs: 60_000, ...o };
  }

  /** Count one refusal; the line to log now, or undefined while within the interval. */
  refused(peer: SockPeer | undefined, now: number): string | undefined {
    const { port, allowedCid, intervalMs } = this.#o;
    this.#count++;
    if (now - this.#last < intervalMs) return undefined;
    const who = peer?.family === "vsock" ? `CID ${peer.cid}` : "an unknown peer";
    const line =
      `control on vsock port ${port}: refused a connection from ${who} (${this.#count} refused since the last such line); only CID ${allowedCid} is served, set BEYOND_PG_CONTROL_VSOCK_PEER_CID to change it`;
    this.#last = now;
    this.#count = 0;
    return line;
  }
}
