import assert from "node:assert/strict";
import { ErrnoError } from "../../ffi/mod.ts";
import {
  acceptBackoffMs,
  acceptErrorCode,
  acceptLoop,
  isTransientAcceptError,
} from "./accept_loop.ts";
import { setLogWriter } from "./log.ts";

function denoError(code: string): Error {
  return Object.assign(new Error(`${code} (os error)`), { code });
}

Deno.test("acceptBackoffMs() doubles from 50 ms and stops at 1 s", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 50].map(acceptBackoffMs), [
    50,
    100,
    200,
    400,
    800,
    1000,
    1000,
  ]);
});

Deno.test("EMFILE, ENFILE, ENOMEM and ECONNABORTED are transient, from Deno or from FFI", () => {
  for (const code of ["EMFILE", "ENFILE", "ENOMEM", "ECONNABORTED"]) {
    assert.ok(isTransientAcceptError(denoError(code)), code);
  }
  assert.ok(isTransientAcceptError(new ErrnoError("accept4", 24)));
  assert.ok(isTransientAcceptError(new ErrnoError("accept4", 23)));
  assert.equal(acceptErrorCode(new ErrnoError("accept4", 103)), "ECONNABORTED");
  assert.ok(!isTransientAcceptError(denoError("EBADF")));
  assert.ok(!isTransientAcceptError(new Error("no code")));
  assert.ok(!isTransientAcceptError("a string"));
});

Deno.test("acceptLoop() backs off on EMFILE and keeps serving; one warning per run of failures", async () => {
  const lines: string[] = [];
  const previous = setLogWriter((l) => lines.push(l));
  try {
    const script: (string | Error | null)[] = [
      "a",
      denoError("EMFILE"),
      denoError("EMFILE"),
      denoError("ENFILE"),
      "b",
      new ErrnoError("accept4", 24),
      "c",
      null,
    ];
    const served: string[] = [];
    const slept: number[] = [];
    await acceptLoop(
      () => {
        const next = script.shift();
        return next instanceof Error ? Promise.reject(next) : Promise.resolve(next ?? null);
      },
      (c) => served.push(c),
      { what: "test", closed: () => false, sleep: (ms) => (slept.push(ms), Promise.resolve()) },
    );
    assert.deepEqual(served, ["a", "b", "c"]);
    assert.deepEqual(slept, [50, 100, 200, 50]);
    assert.equal(lines.filter((l) => /accept failed/.test(l)).length, 2);
    assert.match(lines[0]!, /^\[beyond-pg\] warning: test: accept failed \(EMFILE.*backing off/);
    assert.match(lines[1]!, /test: accepting again after 3 failed accepts/);
  } finally {
    setLogWriter(previous);
  }
});

Deno.test("acceptLoop() ends when the listener was closed, without a warning", async () => {
  const lines: string[] = [];
  const previous = setLogWriter((l) => lines.push(l));
  try {
    let closed = false;
    let calls = 0;
    await acceptLoop(
      () => {
        calls++;
        closed = true;
        return Promise.reject(new Error("Listener has been closed"));
      },
      () => {},
      { what: "test", closed: () => closed },
    );
    assert.equal(calls, 1);
    assert.deepEqual(lines, []);
  } finally {
    setLogWriter(previous);
  }
});
