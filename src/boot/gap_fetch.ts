/**
 * EFFECT: boot step 4a, the gap fetch (Tier 1.5). A volume that comes back as it was a few
 * seconds before its host died lacks the WAL of commits that were acknowledged meanwhile; each
 * was on a WAL sink first (synchronous replication). Before postgres starts:
 *
 *  1. where this volume's valid WAL ends (the newest segment with a valid first page, read
 *     record by record as recovery would: wal/reader.ts);
 *  2. what each sink has (GET /v1/wal, bearer token); an unreachable sink is retried with
 *     backoff for BEYOND_PG_WAL_SINK_WAIT, then boot goes on loudly (a status flag says so);
 *  3. the plan (wal/gap.ts): the sink reaching furthest on this cluster and timeline;
 *  4. its bytes, checked: the volume's own WAL must be a prefix of the sink's, every page
 *     header valid (magic, address, timeline, system identifier); then each segment is placed
 *     in pg_wal through a temp file, fsync and rename — nothing the volume has is replaced by
 *     anything else; postgres then replays it as after any crash.
 *
 * Idempotent: once placed, the volume's end is the sink's, and there is no gap.
 */
import { formatLsn, parseSegment, SEGMENT_BYTES, segmentName, walKind } from "../wal/names.ts";
import { type GapPlan, type LocalWal, planGap } from "../wal/gap.ts";
import { firstRecord, PAGE_BYTES, readPageHeader, segmentBytes, walk } from "../wal/reader.ts";
import { parseSinkListing, type SinkListing } from "../wal/sink_api.ts";
import { WAL_MAGIC } from "../wal/validate.ts";
import type { SinkRef } from "../settings/settings.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { sleep } from "../util/sleep.ts";
import type { BootContext } from "./boot.ts";
import { clusterSysid } from "./cluster.ts";

export interface GapResult {
  outcome: "no gap" | "fetched" | "no sink reachable" | "refused" | "failed";
  ms: number;
  /** Where the time went: reading the volume's WAL, the sinks' listings, fetching, placing. */
  steps?: { localMs: number; listMs: number; fetchMs?: number; placeMs?: number };
  /** The volume's WAL end before, and after placing what was fetched. */
  localEnd?: string;
  end?: string;
  bytes?: number;
  segments?: number;
  sink?: string;
  /** Sinks that answered, of how many. */
  answered: string[];
  refused: string[];
  /** One loud line when boot went on without every sink it needed. */
  warning?: string;
}

/** The volume's own WAL: timeline, where it ends, and the bytes of the segment it ends in. */
export function localWal(ctx: BootContext): (LocalWal & { segment?: Uint8Array }) | undefined {
  const { trees, layout } = ctx;
  const magic = WAL_MAGIC[ctx.bins.major];
  if (magic === undefined) return undefined;
  const sysid = clusterSysid(trees.data, layout);
  const format = { magic, segmentBytes: SEGMENT_BYTES };
  const segs = trees.data.list(layout.walDir)
    .map((e) => e.name)
    .filter((n) => walKind(n) === "segment")
    .map((n) => ({ name: n, id: parseSegment(n)! }))
    .sort((a, b) =>
      a.id.timeline !== b.id.timeline
        ? b.id.timeline - a.id.timeline
        : a.id.number < b.id.number
        ? 1
        : a.id.number > b.id.number
        ? -1
        : 0
    );
  for (const s of segs) {
    const path = `${layout.walDir}/${s.name}`;
    // The first page header first: recycled segments (an old address) are skipped unread.
    const head = readHead(trees.data, path, 40);
    if (!head) continue;
    const h = readPageHeader(head);
    const start = s.id.number * BigInt(SEGMENT_BYTES);
    if (h.magic !== magic || h.pageaddr !== start || h.sysid?.toString() !== sysid) continue;
    const bytes = trees.data.readBytes(path);
    if (!bytes || bytes.length !== SEGMENT_BYTES) continue;
    const src = segmentBytes(new Map([[s.id.number, bytes]]), SEGMENT_BYTES);
    const o = { format, timeline: s.id.timeline, sysid: BigInt(sysid) };
    const first = firstRecord(src, start, o);
    const end = "lsn" in first ? walk(src, first.lsn, o).end : start + 40n;
    return { sysid, timeline: s.id.timeline, end, segment: bytes };
  }
  return undefined;
}

function readHead(tree: BootContext["trees"]["data"], path: string, n: number) {
  let f: Deno.FsFile | undefined;
  try {
    f = tree.open(path, { read: true });
    const b = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const k = f.readSync(b.subarray(got));
      if (k === null || k === 0) return undefined;
      got += k;
    }
    return b;
  } catch {
    return undefined;
  } finally {
    f?.close();
  }
}

interface SinkClient {
  ref: SinkRef;
  listing(): Promise<SinkListing>;
  /** `bytes`: what the sink has; `segment`: a whole segment, `bytes` then zeros. */
  get(name: string): Promise<{ bytes: Uint8Array; segment: Uint8Array }>;
}

class SinkError extends Error {
  constructor(message: string, readonly unreachable: boolean) {
    super(message);
  }
}

function client(ctx: BootContext, ref: SinkRef): SinkClient {
  const r = ctx.settings.replication;
  const http = r.sinkCaPem ? Deno.createHttpClient({ caCerts: [r.sinkCaPem] }) : undefined;
  const call = async (path: string, ms: number): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(`${ref.url}${path}`, {
        headers: { authorization: `Bearer ${r.sinkToken?.reveal() ?? ""}` },
        signal: AbortSignal.timeout(ms),
        ...(http ? { client: http } : {}),
      });
    } catch (error) {
      throw new SinkError(`${ref.url} does not answer (${errorMessage(error)})`, true);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new SinkError(
        `${ref.url} refused the token (${res.status}); set BEYOND_PG_WAL_SINK_TOKEN to the sink's token`,
        false,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new SinkError(`${ref.url}${path} answered ${res.status}`, res.status >= 500);
    }
    return res;
  };
  return {
    ref,
    async listing() {
      const res = await call("/v1/wal", 5000);
      let value: unknown;
      try {
        value = JSON.parse(await res.text());
      } catch {
        throw new SinkError(`${ref.url}/v1/wal is not JSON; is it a beyond-pg wal-sink?`, false);
      }
      const l = parseSinkListing(value, SEGMENT_BYTES);
      if (typeof l === "string") throw new SinkError(`${ref.url}/v1/wal: ${l}`, false);
      return { ...l, sink: ref.name };
    },
    async get(name) {
      const res = await call(`/v1/wal/${name}`, 60_000);
      // Read into a whole segment's buffer (zeros past the end: what gets placed), chunk by
      // chunk: Response.arrayBuffer() of 16 MiB costs several times more here.
      const segment = new Uint8Array(SEGMENT_BYTES);
      let got = 0;
      for await (const chunk of res.body ?? []) {
        if (got + chunk.length > SEGMENT_BYTES) {
          await res.body?.cancel().catch(() => {});
          throw new SinkError(`${name} is larger than a segment`, false);
        }
        segment.set(chunk, got);
        got += chunk.length;
      }
      return { bytes: segment.subarray(0, got), segment };
    },
  };
}

/** Every page header of `bytes` (a segment's first `bytes.length` bytes) is valid. */
function pagesProblem(
  bytes: Uint8Array,
  name: string,
  o: { magic: number; sysid: string; timeline: number },
): string | undefined {
  const id = parseSegment(name)!;
  const start = id.number * BigInt(SEGMENT_BYTES);
  for (let off = 0; off + 24 <= bytes.length; off += PAGE_BYTES) {
    const h = readPageHeader(bytes.subarray(off, off + (off === 0 ? 40 : 24)));
    if (h.magic === 0 && h.pageaddr === 0n) break; // zeros: the end of what was written
    if (h.magic !== o.magic || h.pageaddr !== start + BigInt(off) || h.tli > o.timeline) {
      return `${name}: the page at offset ${off} is not this cluster's WAL at that position`;
    }
    if (off === 0 && h.sysid?.toString() !== o.sysid) {
      return `${name}: system identifier ${h.sysid}, this volume's is ${o.sysid}`;
    }
  }
  return undefined;
}

/** Segments fetched at once from the chosen sink. */
const FETCH_PARALLEL = 4;

function equalPrefix(a: Uint8Array, b: Uint8Array, n: number): number {
  // 8 bytes at a time where both are aligned (jitless V8 is slow byte by byte).
  let i = 0;
  if (a.byteOffset % 8 === 0 && b.byteOffset % 8 === 0) {
    const x = new BigUint64Array(a.buffer, a.byteOffset, Math.floor(n / 8));
    const y = new BigUint64Array(b.buffer, b.byteOffset, Math.floor(n / 8));
    for (; i < x.length && x[i] === y[i]; i++);
    i *= 8;
  }
  for (; i < n && a[i] === b[i]; i++);
  return i;
}

export async function fetchGap(
  ctx: BootContext,
  o: { stop?: AbortSignal; report?: (problem: string) => void } = {},
): Promise<GapResult> {
  const t0 = performance.now();
  const r = ctx.settings.replication;
  const ms = () => Math.round(performance.now() - t0);
  const local = localWal(ctx);
  const localMs = ms();
  if (!local) {
    return {
      outcome: "failed",
      ms: ms(),
      answered: [],
      refused: [],
      warning: "gap fetch: no valid WAL segment found in pg_wal; booting without it",
    };
  }
  const clients = r.sinks.map((ref) => client(ctx, ref));
  // Enough sinks must answer to be sure to see every acknowledged commit: with ANY k of n,
  // one commit may be on only k of them, so n - k + 1.
  const need = Math.max(1, r.sinks.length - r.sinkQuorum + 1);
  const listings = new Map<string, SinkListing>();
  const refused = new Map<string, string>();
  const deadline = Date.now() + r.sinkWaitMs;
  for (let round = 0;; round++) {
    await Promise.all(clients.map(async (c) => {
      if (listings.has(c.ref.name) || refused.has(c.ref.name)) return;
      try {
        listings.set(c.ref.name, await c.listing());
      } catch (error) {
        if (error instanceof SinkError && !error.unreachable) {
          refused.set(c.ref.name, `sink ${c.ref.name}: ${error.message}`);
        } else if (round === 0) {
          log.warn(`gap fetch: sink ${c.ref.name}: ${errorMessage(error)}; retrying`);
        }
      }
    }));
    if (listings.size >= need || listings.size + refused.size === clients.length) break;
    if (Date.now() >= deadline) break;
    const missing = clients.filter((c) => !listings.has(c.ref.name) && !refused.has(c.ref.name));
    o.report?.(
      `gap fetch: waiting for sink(s) ${missing.map((c) => c.ref.name).join(", ")} (${
        Math.ceil((deadline - Date.now()) / 1000)
      } s left)`,
    );
    if (!(await sleep(Math.min(250 * 2 ** round, 2000, deadline - Date.now()), o.stop))) break;
  }
  for (const line of refused.values()) log.error(`gap fetch: ${line}`);
  const answered = [...listings.keys()];
  const listMs = ms() - localMs;
  let warning: string | undefined;
  if (answered.length < need) {
    warning =
      `gap fetch: only ${answered.length} of ${r.sinks.length} WAL sink(s) answered (${need} needed to see every acknowledged commit with ANY ${r.sinkQuorum}); booting with what they have: commits acknowledged only by the others may be missing`;
  }
  const format = {
    magic: WAL_MAGIC[ctx.bins.major]!,
    sysid: local.sysid,
    timeline: local.timeline,
  };
  let plan: GapPlan = planGap(local, [...listings.values()], SEGMENT_BYTES);
  const refusedLines = [...refused.values()];
  // Fetch from the best sink; one whose bytes do not check out is refused, and the next tried.
  for (;;) {
    refusedLines.push(...plan.refused.filter((l) => !refusedLines.includes(l)));
    if (plan.kind === "none") {
      for (const l of plan.refused) log.error(`gap fetch: ${l}`);
      const outcome = answered.length === 0 ? "no sink reachable" : refusedLines.length &&
          answered.every((a) => refusedLines.some((l) => l.startsWith(`sink ${a}:`)))
        ? "refused"
        : "no gap";
      if (outcome === "no sink reachable") {
        warning = `gap fetch: no WAL sink answered within ${
          r.sinkWaitMs / 1000
        } s (BEYOND_PG_WAL_SINK_WAIT); booting without it: commits acknowledged in the last seconds before a host loss may be missing`;
      }
      if (warning) log.error(warning);
      if (outcome === "no gap") log.info(`gap fetch: no gap (WAL ends at ${formatLsn(local.end)})`);
      return {
        outcome,
        ms: ms(),
        steps: { localMs, listMs },
        localEnd: formatLsn(local.end),
        answered,
        refused: refusedLines,
        ...(warning ? { warning } : {}),
      };
    }
    const chosen = plan.sink;
    const c = clients.find((x) => x.ref.name === chosen)!;
    try {
      const tFetch = ms();
      // FETCH_PARALLEL at a time (one 16 MiB body at a time leaves the link and both CPUs idle
      // between requests), kept in order.
      const segs = plan.segments;
      const fetched: { name: string; bytes: Uint8Array; segment: Uint8Array }[] = new Array(
        segs.length,
      );
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(FETCH_PARALLEL, segs.length) }, async () => {
          while (next < segs.length) {
            const i = next++;
            const seg = segs[i]!;
            try {
              const { bytes: body, segment } = await c.get(
                seg.partial ? `${seg.name}.partial` : seg.name,
              );
              if (body.length < seg.bytes) {
                throw new SinkError(
                  `${seg.name}: ${body.length} bytes, the listing said ${seg.bytes}`,
                  false,
                );
              }
              const problem = pagesProblem(body, seg.name, format);
              if (problem) throw new SinkError(problem, false);
              fetched[i] = { name: seg.name, bytes: body, segment };
            } catch (error) {
              next = segs.length; // the others stop too: this sink is refused
              throw error;
            }
          }
        }),
      );
      // The volume's own WAL must be a prefix of the sink's.
      const first = fetched[0]!;
      const segStart = parseSegment(first.name)!.number * BigInt(SEGMENT_BYTES);
      const mine = Number(local.end - segStart);
      if (first.bytes.length < mine || equalPrefix(local.segment!, first.bytes, mine) < mine) {
        throw new SinkError(
          `its ${first.name} differs from this volume's before ${
            formatLsn(local.end)
          } (a diverged copy)`,
          false,
        );
      }
      const tPlace = ms();
      let bytes = 0;
      const files = fetched.map((f) => {
        bytes += f.bytes.length;
        return { path: `${ctx.layout.walDir}/${f.name}`, content: f.segment };
      });
      await ctx.trees.data.writeAtomicAll(files, 0o600);
      bytes -= mine;
      const result: GapResult = {
        outcome: "fetched",
        ms: ms(),
        steps: { localMs, listMs, fetchMs: tPlace - tFetch, placeMs: ms() - tPlace },
        localEnd: formatLsn(local.end),
        end: formatLsn(plan.end),
        bytes,
        segments: fetched.length,
        sink: c.ref.name,
        answered,
        refused: refusedLines,
        ...(warning ? { warning } : {}),
      };
      if (warning) log.error(warning);
      log.info(
        `gap fetch: placed ${bytes} bytes of WAL (${fetched.length} segment(s), ${
          segmentName(parseSegment(first.name)!)
        } on) from sink ${c.ref.name}: WAL now ends at ${result.end} (was ${result.localEnd}), ${result.ms} ms (${
          JSON.stringify(result.steps)
        })`,
      );
      return result;
    } catch (error) {
      const line = `sink ${c.ref.name}: ${errorMessage(error)}`;
      log.error(`gap fetch: ${line}; refusing its WAL`);
      refusedLines.push(line);
      listings.delete(c.ref.name);
      plan = planGap(local, [...listings.values()], SEGMENT_BYTES);
    }
  }
}
