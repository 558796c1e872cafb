import assert from "node:assert/strict";
import { TarGuard, TarRejected } from "./tar_guard.ts";

/** One tar header block (ustar) for `name` of `type` and `size`, with a correct checksum. */
function header(name: string, type: string, size = 0, o: { prefix?: string } = {}): Uint8Array {
  const h = new Uint8Array(512);
  const put = (off: number, s: string) => h.set(new TextEncoder().encode(s), off);
  put(0, name);
  put(100, "0000644\0");
  put(124, size.toString(8).padStart(11, "0") + "\0");
  h[156] = type.charCodeAt(0);
  put(257, "ustar\0");
  put(263, "00");
  if (o.prefix) put(345, o.prefix);
  for (let i = 148; i < 156; i++) h[i] = 32;
  const sum = h.reduce((a, b) => a + b, 0);
  put(148, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

function member(name: string, type: string, data = new Uint8Array(0), o = {}): Uint8Array {
  const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
  padded.set(data);
  return concat(header(name, type, data.length, o), padded);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) (out.set(p, off), off += p.length);
  return out;
}

function feed(bytes: Uint8Array, chunk = 333): TarGuard {
  const g = new TarGuard();
  for (let i = 0; i < bytes.length; i += chunk) g.push(bytes.subarray(i, i + chunk));
  return g;
}

const end = new Uint8Array(1024);
const data = new TextEncoder().encode("x".repeat(700));

Deno.test("TarGuard passes regular files and directories, in any chunking", () => {
  const tar = concat(
    member("PG_VERSION", "0", data),
    member("base/", "5"),
    member("base/1/2", "0", data),
    end,
  );
  for (const chunk of [1, 100, 512, 4096]) assert.equal(feed(tar, chunk).members, 3);
});

Deno.test("TarGuard refuses links, devices, FIFOs, absolute and .. paths, before they pass", () => {
  const cases: [Uint8Array, RegExp][] = [
    [member("conf.d", "2"), /symbolic link/],
    [member("pg_hba.conf", "1"), /hard link/],
    [member("dev", "3"), /character device/],
    [member("fifo", "6"), /FIFO/],
    [member("/etc/passwd", "0", data), /absolute/],
    [member("base/../../x", "0", data), /\.\./],
    [member("x", "0", data, { prefix: "../up" }), /\.\./],
    [member("dir/", "5", data), /has data/],
  ];
  for (const [bad, why] of cases) {
    const tar = concat(member("PG_VERSION", "0", data), bad, end);
    assert.throws(() => feed(tar), (e: unknown) => e instanceof TarRejected && why.test(e.message));
  }
});

Deno.test("TarGuard reads the names pax and GNU long-name headers give the next member", () => {
  const pax = (k: string, v: string) => {
    const rec = ` ${k}=${v}\n`;
    let len = rec.length + 2;
    if (String(len).length + rec.length !== len) len = String(len).length + rec.length;
    return new TextEncoder().encode(`${len}${rec}`);
  };
  assert.throws(
    () => feed(concat(member("h", "x", pax("path", "../../etc/x")), member("ok", "0", data), end)),
    /\.\./,
  );
  assert.throws(
    () => feed(concat(member("h", "x", pax("linkpath", "/etc")), member("ok", "0"), end)),
    /link/,
  );
  const long = new TextEncoder().encode("/abs/name\0");
  assert.throws(
    () => feed(concat(member("././@LongLink", "L", long), member("ok", "0"), end)),
    /absolute/,
  );
  assert.equal(
    feed(concat(member("h", "x", pax("path", "base/long/name")), member("ok", "0", data), end))
      .members,
    1,
  );
});

Deno.test("TarGuard refuses a header with a bad checksum (tar would skip it and read on)", () => {
  const bad = member("PG_VERSION", "0", data);
  bad[0] = "Q".charCodeAt(0);
  assert.throws(() => feed(concat(bad, end)), /checksum/);
});
