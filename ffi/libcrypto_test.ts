import assert from "node:assert/strict";
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { aeadAvailable, gcmOpen, gcmSeal } from "./libcrypto.ts";

Deno.test("gcmSeal/gcmOpen (libcrypto) write and read what node:crypto's AES-256-GCM does; a flipped bit or another key is refused", () => {
  assert.ok(aeadAvailable(), "libcrypto.so.3 is on every machine we run on");
  for (const size of [0, 1, 15, 16, 17, 1 << 20, (1 << 20) + 5]) {
    const key = new Uint8Array(randomBytes(32));
    const iv = new Uint8Array(randomBytes(12));
    const plain = new Uint8Array(randomBytes(size));
    const sealed = gcmSeal(key, iv, plain);
    const c = createCipheriv("aes-256-gcm", key, iv);
    const node = new Uint8Array(Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]));
    assert.deepEqual(sealed, node, `${size} bytes`);
    assert.deepEqual(gcmOpen(key, iv, sealed), plain);
    const d = createDecipheriv("aes-256-gcm", key, iv);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    assert.deepEqual(
      new Uint8Array(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()])),
      plain,
    );
    const bad = sealed.slice();
    bad[Math.floor(bad.length / 2)]! ^= 1;
    assert.equal(gcmOpen(key, iv, bad), undefined, `${size} bytes, a flipped bit`);
    assert.equal(gcmOpen(new Uint8Array(32), iv, sealed), undefined, "another key");
  }
  assert.equal(gcmOpen(new Uint8Array(32), new Uint8Array(12), new Uint8Array(5)), undefined);
});
