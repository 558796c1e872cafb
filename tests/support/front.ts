/**
 * The test's stand-in for the platform's gateway in front of 5432: a TCP front on loopback that
 * sends each new connection to the current upstream. `hold()` keeps new connections waiting
 * (accepted, not yet connected upstream) while a generation hands over; `repoint(port)` sends
 * them, and every later one, to the new generation. Open connections are never moved: they end
 * when their upstream closes them.
 */
export class Front {
  readonly port: number;
  #upstream: number;
  #held: (() => void)[] | undefined;
  readonly #listener: Deno.TcpListener;
  readonly #conns = new Set<Deno.Conn>();
  accepted = 0;

  constructor(port: number, upstream: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.port = port;
    this.#upstream = upstream;
    (async () => {
      for await (const conn of listener) void this.#handle(conn);
    })().catch(() => {});
  }

  hold(): void {
    this.#held ??= [];
  }

  repoint(upstream: number): void {
    this.#upstream = upstream;
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const go of held) go();
  }

  async #handle(client: Deno.Conn): Promise<void> {
    this.accepted++;
    this.#conns.add(client);
    if (this.#held) await new Promise<void>((r) => this.#held!.push(r));
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.#upstream });
    } catch {
      this.#close(client);
      return;
    }
    this.#conns.add(upstream);
    const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
      const buf = new Uint8Array(32 * 1024);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
      } catch { /* closed */ }
      this.#close(client);
      this.#close(upstream);
    };
    await Promise.all([pipe(client, upstream), pipe(upstream, client)]);
  }

  #close(c: Deno.Conn): void {
    if (!this.#conns.delete(c)) return;
    try {
      c.close();
    } catch { /* closed */ }
  }

  close(): void {
    this.#listener.close();
    for (const go of this.#held ?? []) go();
    for (const c of [...this.#conns]) this.#close(c);
  }
}
