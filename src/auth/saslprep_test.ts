import assert from "node:assert/strict";
import reference from "saslprep";
import { saslprep } from "./saslprep.ts";

Deno.test("saslprep() follows the examples of RFC 4013 section 3", () => {
  assert.equal(saslprep("I\u00ADX"), "IX"); // soft hyphen mapped to nothing
  assert.equal(saslprep("user"), "user");
  assert.equal(saslprep("USER"), "USER");
  assert.equal(saslprep("\u00AA"), "a"); // NFKC
  assert.equal(saslprep("\u2168"), "IX");
  assert.equal(saslprep("\u0007"), "\u0007"); // pure ASCII passes as is, as in postgres
  assert.equal(saslprep("\u00e9\u0007"), undefined); // prohibited
  assert.equal(saslprep("\u0627\u0031"), undefined); // RandALCat not at both ends
  assert.equal(saslprep("\u0627\u0031\u0628"), "\u0627\u0031\u0628");
  assert.equal(saslprep("a\u00A0b"), "a b");
  assert.equal(saslprep("\u0221x"), undefined); // unassigned in Unicode 3.2
  assert.equal(saslprep("\u00AD"), undefined); // empty after mapping
});

Deno.test("saslprep() agrees with an independent implementation on random strings", () => {
  const pools = [
    [0x20, 0x7e],
    [0xa0, 0x24f],
    [0x590, 0x6ff],
    [0x2000, 0x206f],
    [0x2150, 0x218f],
    [0x3000, 0x30ff],
    [0xfe00, 0xfeff],
    [0x1f300, 0x1f6ff],
  ] as const;
  let seed = 7;
  let accepted = 0;
  const rand = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
    return (seed >>> 8) % n;
  };
  for (let i = 0; i < 5000; i++) {
    let s = "é";
    const len = 1 + rand(6);
    for (let j = 0; j < len; j++) {
      const [lo, hi] = pools[rand(pools.length)]!;
      s += String.fromCodePoint(lo + rand(hi - lo + 1));
    }
    let expected: string | undefined;
    try {
      expected = reference(s) || undefined;
    } catch {
      expected = undefined;
    }
    assert.equal(saslprep(s), expected, JSON.stringify(s));
    if (expected !== undefined) accepted++;
  }
  // Both outcomes are exercised, not just one.
  assert.ok(accepted > 500 && accepted < 4500, `${accepted} of 5000 accepted`);
});
