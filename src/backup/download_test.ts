import assert from "node:assert/strict";
import type { S3Client } from "../s3/client.ts";
import { sha256Hex } from "../util/crypto.ts";
import { downloadRanges, rangesOf } from "./download.ts";

const MiB = 1 << 20;

Deno.test("rangesOf(): the parts when the manifest lists their hashes, else 16 MiB chunks", () => {
  assert.deepEqual(rangesOf(40 * MiB, {}).map((r) => [r.start / MiB, r.end / MiB]), [
    [0, 16],
    [16, 32],
    [32, 40],
  ]);
  assert.deepEqual(
    rangesOf(40 * MiB, { partSize: 16 * MiB, partSha256: ["a", "b", "c"] }).map((r) => [
      r.start / MiB,
      r.end / MiB,
      r.sha256,
    ]),
    [[0, 16, "a"], [16, 32, "b"], [32, 40, "c"]],
  );
  assert.deepEqual(rangesOf(0, {}), []);
});

/**
 * A stand-in for S3Client.getStream over an in-memory object: each range arrives in 64 KiB
 * chunks; `corrupt` flips a byte of the first response that covers it (the next is right);
 * `gate` holds the rest of the first range's response after its first MiB until released.
 */
function rangeServer(object: Uint8Array, o: { corrupt?: number; gate?: Promise<void> } = {}) {
  let corrupt = o.corrupt;
  const requests: string[] = [];
  const client = {
    getStream(
      _key: string,
      _idle: number | undefined,
      q: { range?: { start: number; end?: number } },
    ): Promise<ReadableStream<Uint8Array>> {
      const start = q.range?.start ?? 0;
      const end = q.range?.end ?? object.length;
      requests.push(`${start}-${end}`);
      const bytes = object.slice(start, end);
      if (corrupt !== undefined && corrupt >= start && corrupt < end) {
        bytes[corrupt - start]! ^= 0xff;
        corrupt = undefined;
      }
      let off = 0;
      return Promise.resolve(
        new ReadableStream<Uint8Array>({
          async pull(ctl) {
            if (off >= bytes.length) return ctl.close();
            if (off >= 1 << 20 && start === 0) await o.gate;
            ctl.enqueue(bytes.slice(off, off + 65536));
            off += 65536;
          },
        }),
      );
    },
  };
  return { client: client as unknown as S3Client, requests };
}

async function parts(object: Uint8Array, size: number): Promise<string[]> {
  const out: string[] = [];
  for (let at = 0; at < object.length; at += size) {
    out.push(await sha256Hex(object.subarray(at, at + size)));
  }
  return out;
}

async function readAll(s: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** `n` bytes that differ from part to part (getRandomValues fills at most 64 KiB at a time). */
function noise(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65536) {
    crypto.getRandomValues(out.subarray(at, Math.min(n, at + 65536)));
  }
  return out;
}

Deno.test("downloadRanges(): in order and exact; the first part streams before it is whole", async () => {
  const object = noise(9 << 20);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { client } = rangeServer(object, { gate });
  const reader = downloadRanges(client, "k", {
    size: object.length,
    partSize: 3 << 20,
    partSha256: await parts(object, 3 << 20),
  }).getReader();
  // The rest of part 1 is held back: its first MiB comes through all the same.
  const first = await reader.read();
  assert.equal(first.value?.length, 1 << 20);
  release();
  const got = new Uint8Array(object.length);
  got.set(first.value!);
  let at = first.value!.length;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    got.set(r.value, at);
    at += r.value.length;
  }
  assert.equal(at, object.length);
  assert.deepEqual(got, object);
});

Deno.test("downloadRanges(): a part with wrong bytes is fetched again while none of it was handed on, and is an error once some was", async () => {
  const object = noise(9 << 20);
  const partSha256 = await parts(object, 3 << 20);
  const opts = { size: object.length, partSize: 3 << 20, partSha256 };
  // Part 3 downloads whole while part 1 is held after its first MiB: nothing of part 3 was
  // handed on when its hash fails, and it is fetched again.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const later = rangeServer(object, { corrupt: 7 << 20, gate });
  const stats = { resumed: 0, refetched: 0 };
  const done = readAll(downloadRanges(later.client, "k", { ...opts, stats }));
  await new Promise((r) => setTimeout(r, 100));
  release();
  assert.deepEqual(await done, object);
  assert.equal(stats.refetched, 1);
  assert.equal(later.requests.filter((r) => r === `${6 << 20}-${9 << 20}`).length, 2);

  // Part 1 streams (its first MiB is handed on before the rest comes): wrong bytes after that
  // cannot be taken back.
  let go!: () => void;
  const held = new Promise<void>((r) => (go = r));
  const first = rangeServer(object, { corrupt: 2 << 20, gate: held });
  const reader = downloadRanges(first.client, "k", opts).getReader();
  assert.equal((await reader.read()).value?.length, 1 << 20);
  go();
  await assert.rejects(
    (async () => {
      while (!(await reader.read()).done) { /* on */ }
    })(),
    /bytes 0–3145728 do not match the manifest's SHA-256 of that part; the backup is corrupt/,
  );
});
