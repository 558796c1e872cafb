import assert from "node:assert/strict";
import {
  EnvelopeError,
  keyFromBase64,
  loadCrypto,
  open,
  Opener,
  RECORD,
  seal,
  sealAsync,
  sealedKeyId,
  Sealer,
  sealWithWebCrypto,
} from "./envelope.ts";

const c = await loadCrypto();
const k1 = keyFromBase64(btoa(String.fromCharCode(...new Uint8Array(32).fill(1))), c);
const k2 = keyFromBase64(btoa(String.fromCharCode(...new Uint8Array(32).fill(2))), c);

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += 65536) crypto.getRandomValues(out.subarray(o, o + 65536));
  return out;
}

Deno.test("seal/open round-trip any size, in chunks of any size; the key id is in the header", () => {
  for (const size of [0, 1, RECORD - 1, RECORD, RECORD + 1, 3 * RECORD + 12345]) {
    const plain = random(size);
    const sealed = seal(c, k1, plain);
    assert.equal(sealed.length, 32 + size + 16 * Math.max(1, Math.ceil(size / RECORD)));
    assert.equal(sealedKeyId(sealed), k1.id);
    assert.deepEqual(open(c, [k2, k1], sealed, "x"), plain, `size ${size}`);
    // Streamed, in odd chunks both ways.
    const s = new Sealer(c, k1);
    const parts: Uint8Array[] = [];
    for (let o = 0; o < size; o += 77777) parts.push(s.push(plain.subarray(o, o + 77777)));
    parts.push(s.finish());
    const whole = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) (whole.set(p, off), off += p.length);
    const o = new Opener(c, [k1], "x");
    const got = new Uint8Array(size);
    let at = 0;
    const take = (b: Uint8Array) => (got.set(b, at), at += b.length);
    for (let i = 0; i < whole.length; i += 100_003) take(o.push(whole.subarray(i, i + 100_003)));
    take(o.finish());
    assert.equal(at, size);
    assert.deepEqual(got, plain);
  }
});

Deno.test("open(): the wrong key, a flipped bit and a cut-off object are each one line", () => {
  const sealed = seal(c, k1, random(2 * RECORD + 10));
  assert.throws(
    () => open(c, [k2], sealed, "000000010000000000000001"),
    (e: Error) =>
      e instanceof EnvelopeError &&
      e.message ===
        `000000010000000000000001 was encrypted with key id ${k1.id}, and BEYOND_PG_ARCHIVE_ENCRYPTION_KEY has only ${k2.id}; add the key that made it (rotation keeps old keys after the new one)`,
  );
  const flipped = sealed.slice();
  flipped[40]! ^= 1;
  assert.throws(
    () => open(c, [k1], flipped, "x"),
    /x does not decrypt \(record 0 fails its check\): it is corrupt or cut short/,
  );
  // Cut at a record boundary: the last record left is not marked last.
  assert.throws(
    () => open(c, [k1], sealed.subarray(0, 32 + 2 * (RECORD + 16)), "x"),
    /does not decrypt \(record 1/,
  );
  assert.throws(() => open(c, [k1], new Uint8Array(40), "x"), /x is not encrypted by beyond-pg/);
});

Deno.test("sealAsync() and its WebCrypto fallback write what open() reads, records cut as seal()'s", async () => {
  const k = keyFromBase64(btoa(String.fromCharCode(...new Uint8Array(32).fill(9))), c);
  for (const size of [0, 1, RECORD - 1, RECORD, RECORD + 1, 3 * RECORD + 17]) {
    const plain = new Uint8Array(size).map((_, i) => (i * 7) % 256);
    const b = seal(c, k, plain);
    for (const a of [await sealAsync(c, k, plain), await sealWithWebCrypto(c, k, plain)]) {
      assert.equal(a.length, b.length, `size ${size}`);
      assert.deepEqual(open(c, [k], a, "x"), plain);
      // A record moved or cut off is refused, as for seal()'s output.
      if (size > RECORD) {
        assert.throws(() => open(c, [k], a.subarray(0, a.length - 5), "x"));
      }
    }
  }
});

Deno.test("without ffi (node:crypto records), seal() and the Sealer stream write what open() reads here (OpenSSL)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bpg-envelope-" });
  try {
    const script = `${dir}/seal.ts`;
    await Deno.writeTextFile(
      script,
      `import { keyFromBase64, loadCrypto, seal, Sealer } from ${
        JSON.stringify(new URL("./envelope.ts", import.meta.url).href)
      };
import { aeadAvailable } from ${JSON.stringify(new URL("../../ffi/mod.ts", import.meta.url).href)};
const c = await loadCrypto();
const k = keyFromBase64(btoa(String.fromCharCode(...new Uint8Array(32).fill(1))), c);
const plain = new Uint8Array(${3 * RECORD + 17}).map((_, i) => (i * 13) % 251);
const s = new Sealer(c, k);
const parts = [s.push(plain.subarray(0, 5000)), s.push(plain.subarray(5000)), s.finish()];
const streamed = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
let at = 0;
for (const p of parts) { streamed.set(p, at); at += p.length; }
console.log(JSON.stringify({ ffi: aeadAvailable(), whole: btoa(Array.from(seal(c, k, plain), (b) => String.fromCharCode(b)).join("")), streamed: btoa(Array.from(streamed, (b) => String.fromCharCode(b)).join("")) }));
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-prompt", "--no-config", "--allow-read", "--allow-env", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const r = JSON.parse(new TextDecoder().decode(out.stdout));
    assert.equal(r.ffi, false, "the child has no ffi: node:crypto sealed it");
    const plain = new Uint8Array(3 * RECORD + 17).map((_, i) => (i * 13) % 251);
    for (const b64 of [r.whole, r.streamed]) {
      const sealed = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      assert.equal(sealed.length, 32 + plain.length + 4 * 16);
      assert.deepEqual(open(c, [k1], sealed, "x"), plain);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
