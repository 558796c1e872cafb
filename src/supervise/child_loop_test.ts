/** The child loop with fakes: no process, no sleeping — milliseconds. */
import assert from "node:assert/strict";
import type { ChildHandle } from "./child.ts";
import { ChildLoop, type LoopDeps } from "./child_loop.ts";
import type { ExitStatus } from "./exit.ts";

class FakeChild implements ChildHandle {
  readonly name = "fake";
  readonly pid: number;
  readonly startedAt: number;
  readonly exited: Promise<ExitStatus>;
  exitStatus: ExitStatus | undefined;
  #exit!: (s: ExitStatus) => void;
  constructor(pid: number, now: number, readonly lines: string[] = []) {
    this.pid = pid;
    this.startedAt = now;
    this.exited = new Promise((r) => (this.#exit = r));
  }
  get running() {
    return this.exitStatus === undefined;
  }
  tail() {
    return this.lines;
  }
  signal() {}
  stop() {
    this.die(0);
    return Promise.resolve(true);
  }
  die(code: number) {
    this.exitStatus = { code, signal: null };
    this.#exit(this.exitStatus);
  }
}

function harness(script: ("up" | "fail")[]) {
  const children: FakeChild[] = [];
  const slept: number[] = [];
  const lines: string[] = [];
  const events: string[] = [];
  let now = 0;
  const stop = new AbortController();
  const deps: LoopDeps = {
    launch: () => {
      const c = new FakeChild(children.length + 1, now, ["FATAL:  it broke"]);
      children.push(c);
      return c;
    },
    waitUp: (c) => {
      const what = script.shift() ?? "up";
      if (what === "fail") (c as FakeChild).die(1);
      return Promise.resolve(what === "up");
    },
    sleep: (ms) => (slept.push(ms), now += ms, Promise.resolve(!stop.signal.aborted)),
    now: () => now,
    failFast: () => false,
    log: { info: (l) => lines.push(l), error: (l) => lines.push(l) },
  };
  const loop = new ChildLoop({ name: "postgres", label: "postgres" }, deps, {
    up: (c) => events.push(`up ${c.pid}`),
    down: (c) => events.push(`down ${c.pid}`),
    exited: (s) => events.push(`exited ${s.code}`),
    problem: (p) => events.push(`problem ${p ?? "-"}`),
    quarantined: (a) => events.push(`quarantined ${a}`),
    failed: (p) => events.push(`failed ${p}`),
  }, stop.signal);
  return { loop, children, slept, lines, events, stop };
}

Deno.test("ChildLoop: start retries a child that dies before it is up, with backoff", async () => {
  const h = harness(["fail", "fail", "up"]);
  assert.equal(await h.loop.start(), true);
  assert.deepEqual(h.slept, [500, 1000]);
  assert.equal(h.children.length, 3);
  assert.match(
    h.lines[1]!,
    /postgres did not start \(exited 1\): FATAL: it broke; retrying in 1000 ms/,
  );
});

Deno.test("ChildLoop: a child that dies after it was up is restarted, and said to be back", async () => {
  const h = harness(["up", "up"]);
  await h.loop.start();
  h.children[0]!.die(137);
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(h.children.length, 2);
  assert.deepEqual(h.events.filter((e) => /^(up|down)/.test(e)), ["up 1", "down 1", "up 2"]);
  assert.ok(h.lines.includes("postgres is back"), h.lines.join("\n"));
});

Deno.test("ChildLoop: a stop request ends the retries", async () => {
  const h = harness(["fail", "fail", "fail"]);
  h.stop.abort();
  assert.equal(await h.loop.start(), false);
});

Deno.test("ChildLoop: a released child's exit is not a restart; start() brings a new one", async () => {
  const h = harness(["up", "up"]);
  await h.loop.start();
  const released = h.loop.release();
  assert.equal(released, h.children[0]);
  assert.equal(h.loop.child, undefined);
  await (released as FakeChild).stop();
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(h.children.length, 1, "no restart");
  assert.deepEqual(h.events, ["up 1"]);
  assert.equal(await h.loop.start(), true);
  assert.equal(h.loop.child, h.children[1]);
});
