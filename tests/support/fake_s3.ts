/**
 * A store that misbehaves on purpose, on loopback: enough of S3 for a supervisor to archive
 * into it (small objects kept in memory, WAL uploads accepted and discarded, conditional PUTs
 * honoured), except that a GET of a key ending in one of `huge` answers with `hugeBytes` bytes,
 * streamed 1 MiB at a time (optionally with their Content-Length). Signatures are not checked.
 */
export interface FakeS3 {
  endpoint: string;
  /** Bytes of huge bodies sent so far (what the client let through before hanging up). */
  hugeSent: number;
  hugeRequests: number;
  close(): Promise<void>;
}

export function startFakeS3(
  o: { huge: string[]; hugeBytes: number; declareLength?: boolean },
): FakeS3 {
  const small = new Map<string, { body: Uint8Array; meta: Record<string, string> }>();
  const known = new Map<string, Record<string, string>>(); // discarded uploads: metadata only
  const state = { hugeSent: 0, hugeRequests: 0 };
  const chunk = new Uint8Array(1 << 20).fill(0x5a);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      const meta: Record<string, string> = {};
      req.headers.forEach((v, k) => {
        if (k.startsWith("x-amz-meta-")) meta[k.slice(11)] = v;
      });
      if (req.method === "PUT") {
        const exists = small.has(path) || known.has(path);
        if (req.headers.get("if-none-match") === "*" && exists) {
          await req.body?.cancel();
          return new Response("<Error><Code>PreconditionFailed</Code></Error>", { status: 412 });
        }
        const body = new Uint8Array(await req.arrayBuffer());
        if (body.length <= 64 * 1024) small.set(path, { body, meta });
        else known.set(path, meta);
        return new Response(null, { status: 200, headers: { etag: `"${body.length}"` } });
      }
      if (req.method === "HEAD") {
        const m = small.get(path)?.meta ?? known.get(path);
        if (!m) return new Response(null, { status: 404 });
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(m)) headers[`x-amz-meta-${k}`] = v;
        return new Response(null, { status: 200, headers });
      }
      if (req.method !== "GET") return new Response(null, { status: 200 });
      if (o.huge.some((h) => path.endsWith(h))) {
        state.hugeRequests++;
        let left = o.hugeBytes;
        const body = new ReadableStream<Uint8Array>({
          pull(c) {
            if (left <= 0) return c.close();
            const n = Math.min(left, chunk.length);
            left -= n;
            state.hugeSent += n;
            c.enqueue(chunk.subarray(0, n));
          },
        }, { highWaterMark: 0 });
        return new Response(body, {
          headers: {
            "x-amz-meta-beyond-codec": "none",
            "x-amz-meta-beyond-size": String(16 << 20),
            ...(o.declareLength ? { "content-length": String(o.hugeBytes) } : {}),
          },
        });
      }
      if (new URL(req.url).searchParams.get("list-type") === "2") {
        return new Response(
          "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        );
      }
      const hit = small.get(path);
      if (!hit) {
        return new Response("<Error><Code>NoSuchKey</Code></Error>", { status: 404 });
      }
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(hit.meta)) headers[`x-amz-meta-${k}`] = v;
      return new Response(hit.body as BodyInit, { headers });
    },
  );
  return {
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    get hugeSent() {
      return state.hugeSent;
    },
    get hugeRequests() {
      return state.hugeRequests;
    },
    close: () => server.shutdown(),
  };
}
