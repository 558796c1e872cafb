/**
 * EFFECT: HTTP on a configurable address (loopback by default): /healthz (the supervisor is
 * alive and not failed), /readyz (5432 serves queries right now), /metrics (Prometheus).
 * Every handler has a deadline, so a scrape never hangs.
 */
import { log } from "../util/log.ts";
import { errorMessage } from "../util/errors.ts";

export interface HttpHandlers {
  live(): boolean;
  ready(): Promise<{ ready: boolean; reason: string }>;
  metrics(): Promise<string>;
}

function deadline<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))])
    .finally(() => clearTimeout(timer));
}

export function parseHostPort(text: string): { hostname: string; port: number } {
  const m = text.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  if (!m) throw new Error(`not host:port: ${text}`);
  return { hostname: m[1]!, port: Number(m[2]) };
}

export function serveHttp(
  addr: { hostname: string; port: number },
  h: HttpHandlers,
): Deno.HttpServer {
  const server = Deno.serve({ ...addr, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    try {
      if (path === "/healthz") {
        return h.live() ? new Response("ok\n") : new Response("failed\n", { status: 503 });
      }
      if (path === "/readyz") {
        const r = await deadline(h.ready(), 3000, {
          ready: false,
          reason: "readiness check timed out",
        });
        return new Response(`${r.ready ? "ready" : "not ready"}: ${r.reason}\n`, {
          status: r.ready ? 200 : 503,
        });
      }
      if (path === "/metrics") {
        const body = await deadline(h.metrics(), 4000, "");
        return new Response(body, {
          status: body ? 200 : 503,
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      return new Response("not found: try /healthz, /readyz, /metrics\n", { status: 404 });
    } catch (error) {
      log.warn(`http ${path}: ${errorMessage(error)}`);
      return new Response("internal error\n", { status: 500 });
    }
  });
  return server;
}
