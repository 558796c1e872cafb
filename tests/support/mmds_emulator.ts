/**
 * A Firecracker-MMDS-shaped metadata server on loopback, for tests and the VM harness:
 * V2 (PUT /latest/api/token → token; GET needs X-metadata-token), or V1 only. Never bound to
 * anything but 127.0.0.1.
 *
 * Run standalone (the VM harness does): deno run -A tests/support/mmds_emulator.ts PORT FILE
 * where FILE holds the JSON document; it is re-read on every request so tests can change it.
 */

export interface MmdsEmulatorOptions {
  /** "v2" requires a token; "v1" has no token endpoint (404). */
  mode?: "v1" | "v2";
  /** Answer the first N requests with 503 (a metadata service still starting). */
  failFirst?: number;
  port?: number;
}

export interface MmdsEmulator {
  url: string;
  port: number;
  requests: { method: string; path: string; token: string | null }[];
  setDocument(doc: unknown): void;
  close(): Promise<void>;
}

export function startMmdsEmulator(
  initial: unknown | (() => string),
  options: MmdsEmulatorOptions = {},
): MmdsEmulator {
  let body: () => string = typeof initial === "function"
    ? initial as () => string
    : () => JSON.stringify(initial);
  const mode = options.mode ?? "v2";
  const tokens = new Set<string>();
  let failures = options.failFirst ?? 0;
  const requests: MmdsEmulator["requests"] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: options.port ?? 0, onListen: () => {} },
    (req) => {
      const url = new URL(req.url);
      const token = req.headers.get("x-metadata-token");
      requests.push({ method: req.method, path: url.pathname, token });
      if (failures > 0) {
        failures--;
        return new Response("starting", { status: 503 });
      }
      if (url.pathname === "/latest/api/token") {
        if (mode === "v1") return new Response("not found", { status: 404 });
        if (req.method !== "PUT") return new Response("use PUT", { status: 405 });
        const t = crypto.randomUUID();
        tokens.add(t);
        return new Response(t);
      }
      if (mode === "v2" && (!token || !tokens.has(token))) {
        return new Response("missing token", { status: 401 });
      }
      if (req.method !== "GET") return new Response("use GET", { status: 405 });
      return new Response(body(), { headers: { "content-type": "application/json" } });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setDocument(doc: unknown) {
      body = () => JSON.stringify(doc);
    },
    close: () => server.shutdown(),
  };
}

if (import.meta.main) {
  const [port, file] = Deno.args;
  if (!port || !file) {
    console.error("usage: mmds_emulator.ts PORT FILE.json");
    Deno.exit(2);
  }
  startMmdsEmulator(() => Deno.readTextFileSync(file), { port: Number(port) });
  console.log(`mmds emulator on 127.0.0.1:${port} serving ${file}`);
}
