import assert from "node:assert/strict";
import { backoffMs, DEFAULT_RETRY, retryReason } from "./retry.ts";

Deno.test("backoffMs(): full jitter under a doubling, capped ceiling", () => {
  const p = { attempts: 10, baseMs: 100, capMs: 1000 };
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((n) => backoffMs(n, p, () => 0.999999)), [
    99,
    199,
    399,
    799,
    999,
    999,
  ]);
  assert.equal(backoffMs(3, p, () => 0), 0);
  // The default policy waits at most ~25 s in all before giving up.
  let worst = 0;
  for (let n = 1; n < DEFAULT_RETRY.attempts; n++) worst += backoffMs(n, DEFAULT_RETRY, () => 1);
  assert.ok(worst <= 26_000, String(worst));
});

Deno.test("retryReason(): 5xx, throttling, resets and timeouts are retried; refusals are not", () => {
  const r = (status: number, code: string, refreshable = false) =>
    retryReason({ status, code }, { refreshableCredentials: refreshable });
  assert.equal(r(500, "InternalError"), "server");
  assert.equal(r(503, "SlowDown"), "throttle");
  assert.equal(r(429, "TooManyRequests"), "throttle");
  assert.equal(r(400, "RequestTimeout"), "timeout");
  assert.equal(r(0, "ConnectionClosed"), "reset");
  assert.equal(r(0, "IdleTimeout"), "timeout");
  assert.equal(r(0, "ConnectFailed"), "connect");
  assert.equal(r(0, "TlsFailed"), undefined);
  assert.equal(r(0, "DeadlineExceeded"), undefined);
  assert.equal(r(403, "RequestTimeTooSkewed"), "skew");
  assert.equal(r(400, "ExpiredToken"), "credentials");
  assert.equal(r(403, "InvalidAccessKeyId"), undefined);
  assert.equal(r(403, "InvalidAccessKeyId", true), "credentials");
  assert.equal(r(403, "AccessDenied", true), undefined);
  assert.equal(r(404, "NoSuchKey"), undefined);
  assert.equal(r(412, "PreconditionFailed"), undefined);
});
