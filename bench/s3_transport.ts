/**
 * The S3 client's own HTTP/1.1 transport vs Deno's fetch, side by side against radosgw:
 * sequential 16 MiB PUTs (body hash signed, as the archiver does) and GETs, alternating in
 * blocks so both see the same store. The baseline is fetch with the same SigV4 signing, or
 * another S3Client module (`--baseline=path/to/client.ts`, e.g. main's, exported with git).
 *
 *   deno run -A bench/s3_transport.ts [--count=200] [--https] [--baseline=…/client.ts]
 */
import { S3Client } from "../src/s3/client.ts";
import { sign } from "../src/s3/sigv4.ts";
import { sha256Hex } from "../src/util/crypto.ts";
import {
  ACCESS_KEY,
  freshBucket,
  RGW_DIR,
  RGW_HTTP,
  RGW_HTTPS,
  SECRET_KEY,
} from "../tests/support/s3.ts";
import { median } from "./lib.ts";

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const count = Number(arg("count") ?? 200);
const https = Deno.args.includes("--https");
const SIZE = 16 << 20;
const BLOCK = 10;

interface Store {
  put(key: string, body: Uint8Array, hash: string): Promise<void>;
  get(key: string): Promise<number>;
}

const bucket = await freshBucket("bench");
const endpoint = https ? `https://127.0.0.1:${RGW_HTTPS}` : `http://127.0.0.1:${RGW_HTTP}`;
const caCerts = https ? [Deno.readTextFileSync(`${RGW_DIR}/ca.crt`)] : undefined;
const config = {
  endpoint,
  region: "us-east-1",
  bucket,
  pathStyle: true,
  credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
  timeoutMs: 60_000,
  ...(caCerts ? { caCerts } : {}),
};

function viaClient(client: {
  put(k: string, b: Uint8Array, o: { payloadHash: string }): Promise<unknown>;
  get(k: string, t?: number, o?: { maxBytes?: number }): Promise<{ body: Uint8Array } | undefined>;
}): Store {
  return {
    put: async (key, body, hash) => void await client.put(key, body, { payloadHash: hash }),
    get: async (key) => (await client.get(key, 60_000, { maxBytes: SIZE + 1 }))!.body.length,
  };
}

/** fetch with the same signing: what the client did before it had its own transport. */
function viaFetch(): Store {
  const httpClient = caCerts ? Deno.createHttpClient({ caCerts }) : undefined;
  const call = async (method: string, key: string, body?: Uint8Array, hash?: string) => {
    const url = new URL(`${endpoint}/${bucket}/${key}`);
    const payloadHash = hash ?? await sha256Hex(new Uint8Array(0));
    const headers = await sign(
      { method, url, headers: { "x-amz-content-sha256": payloadHash }, payloadHash },
      config.credentials,
      config.region,
    );
    const res = await fetch(url, {
      method,
      headers,
      body: body as BodyInit | undefined,
      signal: AbortSignal.timeout(60_000),
      ...(httpClient ? { client: httpClient } : {}),
    });
    if (!res.ok) throw new Error(`${method} ${key}: ${res.status}`);
    return res;
  };
  return {
    put: async (key, body, hash) => void await (await call("PUT", key, body, hash)).body?.cancel(),
    get: async (key) => (await (await call("GET", key)).arrayBuffer()).byteLength,
  };
}

const baselinePath = arg("baseline");
const baseline: Store = baselinePath
  ? viaClient(
    new (await import(new URL(baselinePath, `file://${Deno.cwd()}/`).href)).S3Client(
      config,
    ),
  )
  : viaFetch();
const ourClient = new S3Client(config);
const ours = viaClient(ourClient);
const body = new Uint8Array(SIZE);
for (let off = 0; off < SIZE; off += 65536) crypto.getRandomValues(body.subarray(off, off + 65536));
const hash = await sha256Hex(body);

const times = {
  ours: { put: [] as number[], get: [] as number[] },
  base: { put: [] as number[], get: [] as number[] },
};
console.log(
  `# ${count} sequential 16 MiB PUTs and GETs each, over ${https ? "HTTPS" : "HTTP"} to radosgw, ` +
    `blocks of ${BLOCK} alternating; baseline: ${baselinePath ?? "fetch"}`,
);
// Warm up both (connections, store caches).
for (const s of [ours, baseline]) {
  await s.put("warm", body, hash);
  await s.get("warm");
}
for (let done = 0; done < count; done += BLOCK) {
  for (const [name, s] of [["ours", ours], ["base", baseline]] as const) {
    for (let i = 0; i < BLOCK; i++) {
      const key = `${name}/${i}`;
      let t = performance.now();
      await s.put(key, body, hash);
      times[name].put.push(performance.now() - t);
      t = performance.now();
      if ((await s.get(key)) !== SIZE) throw new Error(`short GET of ${key}`);
      times[name].get.push(performance.now() - t);
    }
  }
}
for (const op of ["put", "get"] as const) {
  const o = times.ours[op];
  const b = times.base[op];
  const mbps = (xs: number[]) => (SIZE * xs.length / 1e6 / (xs.reduce((a, x) => a + x) / 1000));
  console.log(
    `${op.toUpperCase()} 16 MiB: ours median ${median(o).toFixed(1)} ms (${
      mbps(o).toFixed(0)
    } MB/s) vs baseline ${median(b).toFixed(1)} ms (${mbps(b).toFixed(0)} MB/s) → time ratio ${
      (median(o) / median(b)).toFixed(2)
    }×, throughput ratio ${(mbps(o) / mbps(b)).toFixed(2)}×`,
  );
}
for (const name of ["ours", "base"]) {
  for (let i = 0; i < BLOCK; i++) await ourClient.delete(`${name}/${i}`);
}
await ourClient.delete("warm");
ourClient.close();
