import assert from "node:assert/strict";
import { buildVerifier, normalizePassword, parseVerifier, verifierMatches } from "./scram.ts";

// The live cross-check (a client logs in with a password whose verifier we computed) is in
// tests/supervisor_test.ts.
Deno.test("buildVerifier() round-trips through verifierMatches()", async () => {
  const v = await buildVerifier("correct horse");
  assert.match(
    v,
    /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
  );
  assert.equal(await verifierMatches("correct horse", v), true);
  assert.equal(await verifierMatches("correct horsE", v), false);
  assert.equal(await verifierMatches("x", null), false);
  assert.equal(await verifierMatches("x", "md5abc"), false);
});

Deno.test("buildVerifier() is deterministic for a given salt and iteration count", async () => {
  const salt = new Uint8Array(16).fill(7);
  const a = await buildVerifier("pw", { salt, iterations: 4096 });
  const b = await buildVerifier("pw", { salt, iterations: 4096 });
  assert.equal(a, b);
  assert.equal(parseVerifier(a)?.iterations, 4096);
});

Deno.test("normalizePassword() leaves ASCII alone and maps non-ASCII spaces (SASLprep)", () => {
  assert.equal(normalizePassword("abc DEF!"), "abc DEF!");
  assert.equal(normalizePassword("a\u00A0b"), "a b");
  // Prohibited output (a control character) → PostgreSQL uses the raw password.
  assert.equal(normalizePassword("a\u0007b\u00e9"), "a\u0007b\u00e9");
});
