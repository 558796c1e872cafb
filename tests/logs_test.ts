/**
 * The log forwarder with a real child process writing a flood to its stderr pipe: the child
 * is never held up (its own write timings say so), memory stays bounded, and every line is
 * either delivered or counted in a drop marker.
 */
import assert from "node:assert/strict";
import { LogForwarder, type LogRecord } from "../src/logs/forwarder.ts";

const LINES = 200_000;

const childScript = `
const enc = new TextEncoder();
let total = 0, worst = 0;
for (let i = 0; i < ${LINES}; i++) {
  const t = performance.now();
  Deno.stderr.writeSync(enc.encode("LOG:  statement: SELECT " + i + " -- padding padding padding padding\\n"));
  const d = performance.now() - t;
  total += d; if (d > worst) worst = d;
}
Deno.stdout.writeSync(enc.encode(JSON.stringify({ total, worst })));
`;

Deno.test("a flood of 200,000 lines behind a slow sink: the child never blocks, memory stays bounded", async () => {
  const delivered: LogRecord[] = [];
  const slowSink = {
    async write(records: LogRecord[]) {
      await new Promise((r) => setTimeout(r, 20)); // a sink that takes 20 ms per batch
      for (const r of records) delivered.push(r);
    },
    close() {},
  };
  const forwarder = new LogForwarder(slowSink); // production limits: 500/s, burst 1000
  const heapBefore = Deno.memoryUsage().heapUsed;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", childScript],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pumped = forwarder.pump("postgres", child.stderr);
  const report = await new Response(child.stdout).text();
  assert.ok((await child.status).success);
  await pumped;
  await forwarder.flush();
  const { total, worst } = JSON.parse(report);
  const heapGrowthMb = (Deno.memoryUsage().heapUsed - heapBefore) / 2 ** 20;

  const markers = delivered.filter((r) => r.source === "beyond-pg");
  const real = delivered.length - markers.length;
  const droppedInMarkers = markers.reduce(
    (n, m) => n + Number(m.line.match(/dropped (\d+)/)![1]),
    0,
  );
  const pendingDrops = forwarder.droppedTotal - droppedInMarkers; // drops after the last line
  console.log(
    `child wrote ${LINES} lines: total write time ${total.toFixed(0)} ms, worst single write ${
      worst.toFixed(1)
    } ms; ` +
      `delivered ${real}, dropped ${forwarder.droppedTotal}, max queued ${forwarder.maxQueued}, heap +${
        heapGrowthMb.toFixed(1)
      } MB`,
  );
  assert.equal(real + forwarder.droppedTotal, LINES);
  assert.ok(pendingDrops >= 0);
  assert.ok(forwarder.maxQueued <= 4096, `queue grew to ${forwarder.maxQueued}`);
  assert.ok(worst < 250, `a single write by the child stalled ${worst} ms`);
  assert.ok(heapGrowthMb < 64, `heap grew ${heapGrowthMb} MB`);
  assert.ok(real >= 1000, "the burst was not delivered");
});

Deno.test("the supervisor's own lines all arrive, in order, while a child floods past the rate limit", async () => {
  const delivered: LogRecord[] = [];
  const slowSink = {
    async write(records: LogRecord[]) {
      await new Promise((r) => setTimeout(r, 20));
      for (const r of records) delivered.push(r);
    },
    close() {},
  };
  const forwarder = new LogForwarder(slowSink); // production limits
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", childScript],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let own = 0;
  const ticker = setInterval(() => forwarder.write("beyond-pg", `warning: own line ${own++}`), 2);
  try {
    const pumped = forwarder.pump("postgres", child.stderr);
    await new Response(child.stdout).text();
    assert.ok((await child.status).success);
    await pumped;
  } finally {
    clearInterval(ticker);
  }
  await forwarder.flush();
  const ownLines = delivered.filter((r) =>
    r.source === "beyond-pg" && r.line.startsWith("warning")
  );
  console.log(
    `${own} own lines written during a ${LINES}-line flood: ${ownLines.length} delivered; ` +
      `${forwarder.droppedTotal} flood lines dropped`,
  );
  assert.ok(forwarder.droppedTotal > 100_000, "the flood went past the rate limit");
  assert.equal(forwarder.ownDroppedTotal, 0);
  assert.deepEqual(
    ownLines.map((r) => r.line),
    Array.from({ length: own }, (_, i) => `warning: own line ${i}`),
  );
});
