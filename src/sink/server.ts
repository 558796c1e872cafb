/**
 * EFFECT: the sink's HTTP(S) API (wal/sink_api.ts): the listing and the segments, for a bearer
 * token compared in constant time; /healthz, /readyz (pg_receivewal streams), /metrics and
 * /v1/status without one (they hold no WAL and no secret).
 */
import type { HttpHandlers } from "../http/server.ts";
import type { HttpResponse } from "../http/wire.ts";
import type { Secret } from "../settings/secret.ts";
import { sha256 } from "../util/crypto.ts";
import type { SinkStore } from "./store.ts";

/** Equal without telling how much of it matched (both sides hashed to one length first). */
export async function tokenMatches(given: string | undefined, token: Secret): Promise<boolean> {
  const m = /^Bearer\s+(.+)$/i.exec(given ?? "");
  const [a, b] = await Promise.all([sha256(m?.[1] ?? ""), sha256(token.reveal())]);
  let diff = m ? 0 : 1;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const json = (status: number, value: unknown): HttpResponse => ({
  status,
  body: JSON.stringify(value) + "\n",
  headers: { "content-type": "application/json" },
});

export function sinkRoutes(
  store: SinkStore,
  token: Secret,
  status: () => Record<string, unknown>,
): HttpHandlers["other"] {
  return async (req) => {
    if (req.path === "/v1/status") return json(200, status());
    if (!req.path.startsWith("/v1/wal")) return undefined;
    if (!(await tokenMatches(req.authorization, token))) {
      return {
        status: 401,
        body: "a bearer token is required (Authorization: Bearer <BEYOND_PG_WAL_SINK_TOKEN>)\n",
        headers: { "www-authenticate": "Bearer" },
      };
    }
    if (req.path === "/v1/wal" || req.path === "/v1/wal/") return json(200, store.listing());
    const name = req.path.slice("/v1/wal/".length);
    const body = store.openToServe(name);
    if (!body) return { status: 404, body: `no WAL file ${JSON.stringify(name)} here\n` };
    return {
      status: 200,
      body,
      headers: { "content-type": "application/octet-stream", "x-valid-bytes": `${body.length}` },
    };
  };
}
