/**
 * A TCP proxy on loopback in front of radosgw, for faults: `down` resets every connection
 * (a store that is unreachable), `throttle` slows uploads so a process can be killed mid-way,
 * `holdResponses` swallows the store's answers (killed after the upload, before the reply),
 * `stall` stops moving bytes either way on every connection (a store stopped with SIGSTOP).
 * `inject` answers the next new connections itself, one fault each, once their request head is
 * in: an S3 error (503 SlowDown, 500) or a reset; `dateOffsetMs` shifts the store's `Date`.
 */

/** One injected fault: an S3 error answer, or a connection reset before any answer. */
export type Fault = "reset" | { status: number; code: string };
export class FaultProxy {
  readonly port: number;
  down = false;
  /** Bytes per second from client to store, and back (0: unlimited). */
  throttle = 0;
  throttleDown = 0;
  received = 0;
  /** Swallow the store's answer to a request that carried a body (an upload). */
  holdResponses = false;
  /** Move no byte in either direction (connections are still accepted). */
  stall = false;
  /** Faults for the next new connections, first first (each taken once). */
  inject: Fault[] = [];
  /** Faults injected so far. */
  injected = 0;
  /** Client connections accepted (keep-alive reuse shows as few of them). */
  accepted = 0;
  /** Client → store bytes seen, and store → client responses seen, since the last reset. */
  sent = 0;
  responses = 0;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();

  constructor(upstreamPort: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.port = (listener.addr as Deno.NetAddr).port;
    (async () => {
      for await (const conn of listener) this.#handle(conn, upstreamPort);
    })().catch(() => {});
  }

  async #handle(client: Deno.Conn, upstreamPort: number): Promise<void> {
    this.accepted++;
    if (this.down) {
      client.close();
      return;
    }
    const fault = this.inject.shift();
    if (fault) {
      this.injected++;
      await this.#fault(client, fault).catch(() => {});
      try {
        client.close();
      } catch { /* closed */ }
      return;
    }
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: upstreamPort });
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(upstream);
    const closeBoth = () => {
      for (const c of [client, upstream]) {
        this.#conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      }
    };
    let pending = 0; // request bytes since the last response on this connection
    const up = (async () => {
      const buf = new Uint8Array(16 * 1024);
      for (;;) {
        await this.#unstalled(client);
        if (this.down) break;
        const n = await client.read(buf);
        if (n === null) break;
        await this.#unstalled(client);
        this.sent += n;
        pending += n;
        if (this.throttle) await new Promise((r) => setTimeout(r, (n / this.throttle) * 1000));
        let off = 0;
        while (off < n) off += await upstream.write(buf.subarray(off, n));
      }
    })();
    const down = (async () => {
      const buf = new Uint8Array(16 * 1024);
      for (;;) {
        await this.#unstalled(client);
        const n = await upstream.read(buf);
        if (n === null) break;
        await this.#unstalled(client);
        this.responses++;
        if ((this.holdResponses && pending > 64 * 1024) || this.down) continue;
        pending = 0;
        this.received += n;
        if (this.throttleDown) {
          await new Promise((r) => setTimeout(r, (n / this.throttleDown) * 1000));
        }
        let off = 0;
        while (off < n) off += await client.write(buf.subarray(off, n));
      }
    })();
    await Promise.race([up, down]).catch(() => {});
    await Promise.allSettled([up, down]);
    closeBoth();
  }

  /** Read the request head, then answer with the fault (the body, if any, is not read). */
  async #fault(client: Deno.Conn, fault: Fault): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await client.read(buf);
      if (n === null) return;
      head += new TextDecoder().decode(buf.subarray(0, n));
    }
    if (fault === "reset") return;
    const body =
      `<?xml version="1.0"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`;
    const answer =
      `HTTP/1.1 ${fault.status} ${fault.code}\r\ncontent-type: application/xml\r\ncontent-length: ${body.length}\r\ndate: ${
        new Date().toUTCString()
      }\r\nconnection: close\r\n\r\n${body}`;
    const bytes = new TextEncoder().encode(answer);
    for (let off = 0; off < bytes.length;) off += await client.write(bytes.subarray(off));
  }

  /** Wait while `stall` is set and the connection is not cut. */
  async #unstalled(client: Deno.Conn): Promise<void> {
    while (this.stall && this.#conns.has(client)) await new Promise((r) => setTimeout(r, 20));
  }

  /** Drop every open connection (with `down`: the store vanished). */
  cut(): void {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  close(): void {
    this.cut();
    this.#listener.close();
  }
}
