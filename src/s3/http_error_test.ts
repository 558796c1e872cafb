import assert from "node:assert/strict";
import {
  closedMessage,
  deadlineMessage,
  formatBytes,
  formatSeconds,
  idleMessage,
  newProgress,
} from "./http_error.ts";

Deno.test("formatBytes() and formatSeconds() write sizes and times as an operator reads them", () => {
  assert.deepEqual(
    [0, 512, 12_800, 1_258_291, 5 << 20, 3 * 2 ** 30].map(formatBytes),
    ["0 B", "512 B", "12.5 KiB", "1.2 MiB", "5.0 MiB", "3.0 GiB"],
  );
  assert.deepEqual([30_000, 1500, 200, 2000].map(formatSeconds), ["30 s", "1.5 s", "0.2 s", "2 s"]);
});

Deno.test("the timeout messages say which timer fired and how far the exchange got", () => {
  const p = newProgress(5_033_165);
  p.phase = "send";
  p.sent = 1_258_291;
  assert.equal(idleMessage(p, 30_000), "no progress for 30 s after 1.2 MiB of 4.8 MiB sent");
  assert.equal(
    deadlineMessage(p, 600_000),
    "not done within the deadline of 600 s (after 1.2 MiB of 4.8 MiB sent)",
  );
  p.phase = "wait";
  assert.equal(idleMessage(p, 30_000), "no answer for 30 s after sending 4.8 MiB");
  assert.equal(
    closedMessage(p, "Connection reset by peer"),
    "the connection was closed before an answer (Connection reset by peer)",
  );
  p.phase = "receive";
  p.bodyReceived = 1 << 20;
  assert.equal(idleMessage(p, 2000), "no progress for 2 s after 1.0 MiB received");
  p.toReceive = 16 << 20;
  assert.equal(
    closedMessage(p, ""),
    "the connection was closed after 1.0 MiB of 16.0 MiB received",
  );
  const get = newProgress(0);
  get.phase = "wait";
  assert.equal(idleMessage(get, 30_000), "no answer for 30 s after sending the request");
});
