import assert from "node:assert/strict";
import { IdlePool } from "./pool.ts";

class FakeConn {
  closed = false;
  constructor(readonly name: string) {}
  close(): void {
    this.closed = true;
  }
}

Deno.test("IdlePool hands back the most recently used connection of the same origin", () => {
  const pool = new IdlePool<FakeConn>({});
  const [a, b, c] = [new FakeConn("a"), new FakeConn("b"), new FakeConn("c")];
  pool.put("http://s3:80", a);
  pool.put("http://s3:80", b);
  pool.put("https://s3:443", c);
  assert.equal(pool.take("http://s3:80"), b);
  assert.equal(pool.take("http://s3:80"), a);
  assert.equal(pool.take("http://s3:80"), undefined);
  assert.equal(pool.size(), 1);
  pool.close();
  assert.ok(c.closed);
});

Deno.test("IdlePool keeps at most maxIdle per origin, closing the oldest; 0 keeps none", () => {
  const pool = new IdlePool<FakeConn>({ maxIdle: 2 });
  const conns = ["a", "b", "c"].map((n) => new FakeConn(n));
  for (const c of conns) pool.put("o", c);
  assert.deepEqual(conns.map((c) => c.closed), [true, false, false]);
  assert.equal(pool.size("o"), 2);
  pool.close();
  const none = new IdlePool<FakeConn>({ maxIdle: 0 });
  const d = new FakeConn("d");
  none.put("o", d);
  assert.ok(d.closed);
  assert.equal(none.take("o"), undefined);
});

Deno.test("IdlePool closes a connection left idle for keepAliveMs, and any put after close()", async () => {
  const pool = new IdlePool<FakeConn>({ keepAliveMs: 50 });
  const [a, b] = [new FakeConn("a"), new FakeConn("b")];
  pool.put("o", a);
  pool.put("o", b);
  assert.equal(pool.take("o"), b); // taken: its timer is off
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(a.closed);
  assert.ok(!b.closed);
  assert.equal(pool.size(), 0);
  pool.close();
  pool.put("o", b);
  assert.ok(b.closed);
});
