import assert from "node:assert/strict";
import { ScramClient } from "../auth/scram.ts";
import {
  MessageReader,
  parseDataRow,
  parseFields,
  parseRowDescription,
  queryMessage,
  startupMessage,
} from "./protocol.ts";

Deno.test("ScramClient matches the RFC 7677 SCRAM-SHA-256 test vector", async () => {
  const c = new ScramClient("pencil", { nonce: "rOprNGfwEbeRWgbNEkqO", user: "user" });
  assert.equal(c.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
  const final = await c.final(
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  );
  assert.equal(
    final,
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  await c.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  await assert.rejects(c.verify("v=AAAA"), /does not verify/);
});

Deno.test("ScramClient refuses a server nonce that does not extend ours", async () => {
  const c = new ScramClient("pw", { nonce: "abc" });
  await assert.rejects(c.final("r=xyz,s=AAAA,i=4096"), /malformed server-first/);
});

function backend(type: string, body: number[]): Uint8Array {
  const out = new Uint8Array(5 + body.length);
  out[0] = type.charCodeAt(0);
  new DataView(out.buffer).setInt32(1, 4 + body.length, false);
  out.set(body, 5);
  return out;
}

Deno.test("MessageReader splits messages across chunks; rows and errors parse", () => {
  const enc = new TextEncoder();
  const rowDesc = backend("T", [0, 1, ...enc.encode("n"), 0, ...new Array(18).fill(0)]);
  const dataRow = backend("D", [0, 2, 0, 0, 0, 1, ...enc.encode("7"), 255, 255, 255, 255]);
  const error = backend("E", [
    ...enc.encode("SERROR"),
    0,
    ...enc.encode("C42P01"),
    0,
    ...enc.encode("Mno table"),
    0,
    0,
  ]);
  const all = new Uint8Array([...rowDesc, ...dataRow, ...error]);
  const r = new MessageReader();
  const got = [];
  for (const b of all) {
    r.push(new Uint8Array([b]));
    let m;
    while ((m = r.next())) got.push(m);
  }
  assert.deepEqual(got.map((m) => m.type), ["T", "D", "E"]);
  assert.deepEqual(parseRowDescription(got[0]!.body), ["n"]);
  assert.deepEqual(parseDataRow(got[1]!.body), ["7", null]);
  assert.deepEqual(parseFields(got[2]!.body), { S: "ERROR", C: "42P01", M: "no table" });
});

Deno.test("startup and query messages are length-prefixed as the protocol says", () => {
  const s = startupMessage({ user: "postgres", database: "postgres" });
  assert.equal(new DataView(s.buffer).getInt32(0, false), s.length);
  assert.deepEqual([...s.subarray(4, 8)], [0, 3, 0, 0]);
  const q = queryMessage("SELECT 1");
  assert.equal(String.fromCharCode(q[0]!), "Q");
  assert.equal(new DataView(q.buffer).getInt32(1, false), q.length - 1);
  assert.equal(q.at(-1), 0);
});
