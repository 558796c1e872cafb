/**
 * The real S3-compatible server of the tests and benchmarks: Ceph radosgw on loopback
 * (scripts/s3/rgw-up.sh), started on first use when it is not already answering, and stopped
 * at exit by whoever started it. Each test takes a bucket of its own.
 */
import { S3Client } from "../../src/s3/client.ts";
import { repoRoot } from "./paths.ts";

export const RGW_DIR = Deno.env.get("BEYOND_TEST_RGW_DIR") ?? `${repoRoot}/.cache/rgw`;
export const RGW_HTTP = 7480;
export const RGW_HTTPS = 7443;
export const ACCESS_KEY = "test";
export const SECRET_KEY = "testtesttest";

async function answers(): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${RGW_HTTP}/`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

let ready: Promise<void> | undefined;

/** radosgw on 127.0.0.1:7480 (HTTP) and :7443 (HTTPS, CA in RGW_DIR/ca.crt). */
export function ensureRgw(): Promise<void> {
  ready ??= (async () => {
    if (await answers()) return;
    const out = await new Deno.Command("sh", {
      args: [
        `${repoRoot}/scripts/s3/rgw-up.sh`,
        RGW_DIR,
        String(RGW_HTTP),
        String(RGW_HTTPS),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success || !(await answers())) {
      throw new Error(
        `radosgw did not start (scripts/s3/rgw-up.sh ${RGW_DIR}): ${
          new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" | ")
        }; install it with ./scripts/setup.sh test`,
      );
    }
    globalThis.addEventListener("unload", () => {
      new Deno.Command("sh", { args: [`${repoRoot}/scripts/s3/rgw-down.sh`, RGW_DIR] })
        .outputSync();
    });
  })();
  return ready;
}

export function s3Client(bucket: string, endpoint = `http://127.0.0.1:${RGW_HTTP}`): S3Client {
  return new S3Client({
    endpoint,
    region: "us-east-1",
    bucket,
    pathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    idleMs: 30_000,
    ...(endpoint.startsWith("https:")
      ? { caCerts: [Deno.readTextFileSync(`${RGW_DIR}/ca.crt`)] }
      : {}),
  });
}

/** A new, empty bucket. */
export async function freshBucket(prefix = "t"): Promise<string> {
  await ensureRgw();
  const name = `${prefix}-${crypto.randomUUID().slice(0, 12)}`;
  await s3Client(name).createBucket();
  return name;
}

/** Supervisor/CLI settings for an archive target in `bucket`. */
export function s3Env(
  bucket: string,
  o: { prefix?: string; endpoint?: string; codec?: string; parallel?: number } = {},
): Record<string, string> {
  return {
    BEYOND_PG_ARCHIVE_TARGET: `s3://${bucket}/${o.prefix ?? "db"}`,
    BEYOND_PG_S3_ENDPOINT: o.endpoint ?? `http://127.0.0.1:${RGW_HTTP}`,
    BEYOND_PG_S3_REGION: "us-east-1",
    BEYOND_PG_S3_ACCESS_KEY: ACCESS_KEY,
    BEYOND_PG_S3_SECRET_KEY: SECRET_KEY,
    ...(o.codec ? { BEYOND_PG_ARCHIVE_CODEC: o.codec } : {}),
    ...(o.parallel ? { BEYOND_PG_ARCHIVE_PARALLEL: String(o.parallel) } : {}),
  };
}
