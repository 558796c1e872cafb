import assert from "node:assert/strict";
import { parseTxQueue, sendQueue } from "./send_queue.ts";

const TABLE =
  `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1D24 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1
   1: 0100007F:9C40 0100007F:1D24 01 003D1000:00000000 01:00000014 00000000     0        0 12346 1
   2: 0100007F:1D24 0100007F:9C40 01 00000000:00012000 00:00000000 00000000     0        0 12347 1
`;

Deno.test("parseTxQueue() finds a connection by its two ports and reads tx_queue (hex)", () => {
  assert.equal(parseTxQueue(TABLE, 0x9c40, 0x1d24), 0x3d1000);
  assert.equal(parseTxQueue(TABLE, 0x1d24, 0x9c40), 0);
  assert.equal(parseTxQueue(TABLE, 0x9c41, 0x1d24), undefined);
  assert.equal(parseTxQueue("", 1, 2), undefined);
});

Deno.test("sendQueue() sees bytes a peer has not read yet (Linux)", async () => {
  if (Deno.build.os !== "linux") return;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const peer = await accepted;
  try {
    assert.equal(await sendQueue(conn), 0);
    // More than the peer's receive buffer takes, so some stays with us.
    const big = new Uint8Array(8 << 20);
    let sent = 0;
    const writing = (async () => {
      while (sent < big.length) sent += await conn.write(big.subarray(sent));
    })().catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    const queued = await sendQueue(conn);
    assert.ok(queued !== undefined && queued > 0, `queued ${queued}`);
    conn.close();
    await writing;
  } finally {
    peer.close();
    listener.close();
  }
});
