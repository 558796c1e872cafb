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
 * `gate` holds the rest of a response after its first chunk until released.
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
            if (off > 0 && start === 0) await o.gate;
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
  const object = noise(1_500_000);
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { client } = rangeServer(object, { gate });
  const reader = downloadRanges(client, "k", {
    size: object.length,
    partSize: 300_000,
    partSha256: await parts(object, 300_000),
  }).getReader();
  // The rest of part 1 is held back: its first chunk comes through all the same.
  const first = await reader.read();
  assert.equal(first.value?.length, 65536);
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
  const object = noise(600_000);
  const partSha256 = await parts(object, 200_000);
  // Part 3 downloads while part 1 is read: nothing of it was handed on when its hash fails.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const later = rangeServer(object, { corrupt: 450_000, gate });
  const stats = { resumed: 0, refetched: 0 };
  const stream = downloadRanges(later.client, "k", {
    size: object.length,
    partSize: 200_000,
    partSha256,
    stats,
  });
  const done = readAll(stream);
  await new Promise((r) => setTimeout(r, 50));
  release();
  assert.deepEqual(await done, object);
  assert.equal(stats.refetched, 1);
  assert.equal(later.requests.filter((r) => r === "400000-600000").length, 2);

  // Part 1 is handed on as it arrives: wrong bytes in it cannot be taken back.
  const first = rangeServer(object, { corrupt: 150_000 });
  await assert.rejects(
    readAll(
      downloadRanges(first.client, "k", { size: object.length, partSize: 200_000, partSha256 }),
    ),
    /bytes 0–200000 do not match the manifest's SHA-256 of that part; the backup is corrupt/,
  );
});
