import assert from "node:assert/strict";
import { TokenBucket } from "./bucket.ts";
import { encodeLogFrame, LogFrameDecoder } from "./frame.ts";
import { LogForwarder, type LogRecord } from "./forwarder.ts";
import { LineSplitter, TRUNCATION_MARK } from "./splitter.ts";

Deno.test("TokenBucket admits a burst of 1000, then 500 per second", () => {
  const b = new TokenBucket(500, 1000, 0);
  let n = 0;
  for (let i = 0; i < 1500; i++) if (b.take(0)) n++;
  assert.equal(n, 1000);
  n = 0;
  for (let i = 0; i < 2000; i++) if (b.take(1000)) n++;
  assert.equal(n, 500);
  n = 0;
  for (let t = 1000; t < 11_000; t += 10) for (let i = 0; i < 10; i++) if (b.take(t)) n++;
  assert.equal(n, 4995); // 10 s at 500/s (the first 10 ms had no tokens left)
});

Deno.test("TokenBucket never holds more than the burst after a long quiet spell", () => {
  const b = new TokenBucket(500, 1000, 0);
  let n = 0;
  for (let i = 0; i < 5000; i++) if (b.take(3_600_000)) n++;
  assert.equal(n, 1000);
});

class MemorySink {
  records: LogRecord[] = [];
  write(r: LogRecord[]) {
    this.records.push(...r);
    return Promise.resolve();
  }
  close() {}
}

Deno.test("LogForwarder announces drops with the exact count before the next line", async () => {
  let now = 0;
  const sink = new MemorySink();
  const f = new LogForwarder(sink, { now: () => now });
  for (let i = 0; i < 1250; i++) f.write("postgres", `line ${i}`);
  now = 1000; // 500 new tokens
  f.write("postgres", "after");
  await f.flush();
  const lines = sink.records.map((r) => r.line);
  assert.equal(lines.length, 1002);
  assert.equal(lines[999], "line 999");
  assert.equal(lines[1000], "[beyond-pg: dropped 250 log lines]");
  assert.equal(sink.records[1000]!.source, "beyond-pg");
  assert.equal(lines[1001], "after");
  assert.equal(f.droppedTotal, 250);
});

Deno.test("LogForwarder drops instead of queueing without bound behind a stalled sink", async () => {
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  const written: LogRecord[] = [];
  const sink = {
    write: async (r: LogRecord[]) => {
      await stalled;
      written.push(...r);
    },
    close() {},
  };
  const f = new LogForwarder(sink, { rate: 1e9, burst: 1e9, queueLimit: 100 });
  for (let i = 0; i < 10_000; i++) f.write("postgres", `l${i}`);
  assert.ok(f.maxQueued <= 100, `queued ${f.maxQueued}`);
  release();
  await f.flush();
  f.write("postgres", "next");
  await f.flush();
  assert.equal(written.at(-2)!.line, `[beyond-pg: dropped ${10_000 - 1 - 100} log lines]`);
});

Deno.test("LogForwarder never drops the supervisor's own lines for a postgres flood (separate budget)", async () => {
  let now = 0;
  const sink = new MemorySink();
  const f = new LogForwarder(sink, { now: () => now, queueLimit: 4096 });
  for (let i = 0; i < 5000; i++) {
    f.write("postgres", `flood ${i}`);
    if (i % 500 === 499) f.write("beyond-pg", `warning ${i}`);
  }
  now = 1; // no time for new tokens: the flood stays over budget
  f.write("beyond-pg", "last warning");
  await f.flush();
  const own = sink.records.filter((r) => r.source === "beyond-pg").map((r) => r.line);
  assert.deepEqual(
    own.filter((l) => !l.startsWith("[beyond-pg: dropped")),
    [...Array.from({ length: 10 }, (_, k) => `warning ${k * 500 + 499}`), "last warning"],
  );
  assert.equal(f.droppedTotal, 4000);
  assert.equal(f.ownDroppedTotal, 0);
  assert.equal(sink.records.filter((r) => r.source === "postgres").length, 1000);
  // Order is kept: the first warning comes after the 500 flood lines before it.
  assert.equal(sink.records.findIndex((r) => r.line === "warning 499"), 500);
});

Deno.test("LogForwarder bounds the supervisor's own lines behind a stalled sink, then says how many it dropped", async () => {
  let release!: () => void;
  const stalled = new Promise<void>((r) => (release = r));
  const written: LogRecord[] = [];
  const sink = {
    write: async (r: LogRecord[]) => {
      await stalled;
      written.push(...r);
    },
    close() {},
  };
  const f = new LogForwarder(sink, { ownQueueLimit: 50 });
  for (let i = 0; i < 10_000; i++) f.write("beyond-pg", `own ${i}`);
  assert.ok(f.maxQueued <= 50, `queued ${f.maxQueued}`);
  release();
  await f.flush();
  f.write("beyond-pg", "after");
  await f.flush();
  assert.equal(f.ownDroppedTotal, 10_000 - 1 - 50);
  assert.equal(written.at(-3)!.line, "own 50");
  assert.equal(written.at(-2)!.line, `[beyond-pg: dropped ${10_000 - 1 - 50} log lines]`);
  assert.equal(written.at(-1)!.line, "after");
});

Deno.test("LogForwarder.pump: a child's stream is rate limited whatever the child is called", async () => {
  const sink = new MemorySink();
  const f = new LogForwarder(sink, { now: () => 0 });
  const text = Array.from({ length: 3000 }, (_, i) => `line ${i}\n`).join("");
  await f.pump("beyond-pg", ReadableStream.from([new TextEncoder().encode(text)]));
  await f.flush();
  assert.equal(sink.records.length, 1000);
  assert.equal(f.ownDroppedTotal, 0);
});

Deno.test("LogForwarder.pump: a flood is counted exactly and the tail still sees the last lines", async () => {
  const now = 0;
  const sink = new MemorySink();
  const f = new LogForwarder(sink, { now: () => now });
  const enc = new TextEncoder();
  // 3000 lines in chunks of 100 (one chunk splits a line across the boundary); no time passes,
  // so the bucket admits the first 1000 and the rest are dropped.
  const text = Array.from({ length: 3000 }, (_, i) => `line ${i}\r\n`).join("");
  const bytes = enc.encode(text);
  const cuts = [0];
  for (let n = 0, i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10 && ++n % 100 === 0) cuts.push(i + 1);
  }
  cuts[7] = cuts[7]! - 3;
  const stream = ReadableStream.from(
    cuts.map((c, i) => bytes.subarray(c, cuts[i + 1] ?? bytes.length)),
  );
  const tail: string[] = [];
  await f.pump("postgres", stream, (line) => tail.push(line), 4);
  await f.flush();
  assert.equal(f.droppedTotal, 2000);
  assert.equal(sink.records.length, 1000);
  assert.equal(sink.records.at(-1)!.line, "line 999");
  assert.deepEqual(tail.slice(-4), ["line 2996", "line 2997", "line 2998", "line 2999"]);
});

Deno.test("LineSplitter cuts long lines at the limit and bounds memory until the newline", () => {
  const s = new LineSplitter(10);
  const enc = new TextEncoder();
  assert.deepEqual(s.push(enc.encode("short\nabcdefghijklmnop")), [
    "short",
    "abcdefghij" + TRUNCATION_MARK,
  ]);
  assert.deepEqual(s.push(enc.encode("qrstuvwxyz".repeat(1000))), []);
  assert.deepEqual(s.push(enc.encode("end\nnext\r\npart")), ["next"]);
  assert.deepEqual(s.flush(), ["part"]);
});

Deno.test("LineSplitter joins lines split across chunks", () => {
  const s = new LineSplitter(100);
  const enc = new TextEncoder();
  assert.deepEqual(s.push(enc.encode("hel")), []);
  assert.deepEqual(s.push(enc.encode("lo\nwor")), ["hello"]);
  assert.deepEqual(s.push(enc.encode("ld\n")), ["world"]);
});

Deno.test("log frames round-trip through the decoder, split anywhere", () => {
  const frames = [0, 1, 2].map((seq) =>
    encodeLogFrame({
      type: "UserProcessStreamData",
      stream: "stderr",
      source: "postgres",
      seq,
      ts: "t",
      data: `d${seq}`,
    })
  );
  const all = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let off = 0;
  for (const f of frames) (all.set(f, off), (off += f.length));
  const d = new LogFrameDecoder();
  const got = [
    ...d.push(all.subarray(0, 7)),
    ...d.push(all.subarray(7, 50)),
    ...d.push(all.subarray(50)),
  ];
  assert.deepEqual(got.map((f) => [f.seq, f.data]), [[0, "d0"], [1, "d1"], [2, "d2"]]);
});
