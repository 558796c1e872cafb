import assert, { deepEqual, equal } from "node:assert/strict";
import { FifoOutput, removeStaleFifos } from "./fifo.ts";
import { RootTree } from "../fs/tree.ts";

async function collect(stream: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  return text + decoder.decode();
}

Deno.test("fifo: a child's output arrives in order and the reader stops at end()", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fifo-test-" });
  const fifo = new FifoOutput(RootTree.check(dir, "test"), "child");
  try {
    equal(Deno.statSync(fifo.path).mode! & 0o777, 0o600);
    const reading = collect(fifo.stream());
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'f=$1; exec >"$f" 2>&1; for i in 1 2 3; do echo "line $i"; done; echo err >&2',
        "sh",
        fifo.path,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const status = await child.status;
    assert(status.success);
    fifo.end();
    equal(await reading, "line 1\nline 2\nline 3\nerr\n");
  } finally {
    fifo.close();
    deepEqual([...Deno.readDirSync(dir)], []);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fifo: end() on a full FIFO does not block; the reader gets everything, then stops", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fifo-test-" });
  const fifo = new FifoOutput(RootTree.check(dir, "test"), "full");
  try {
    // 64 KiB fills a Linux pipe: nobody reads until after end().
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", `head -c 65536 /dev/zero | tr '\\0' a >"$1"`, "sh", fifo.path],
    }).spawn();
    assert((await child.status).success);
    fifo.end();
    const text = await collect(fifo.stream());
    equal(text.length, 65536);
    equal(text.replaceAll("a", ""), "");
  } finally {
    fifo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fifo: end() with nothing written yields an empty stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fifo-test-" });
  const fifo = new FifoOutput(RootTree.check(dir, "test"), "quiet");
  try {
    const reading = collect(fifo.stream());
    fifo.end();
    equal(await reading, "");
  } finally {
    fifo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fifo: removeStaleFifos removes only FIFOs of processes that are gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fifo-test-" });
  const mine = new FifoOutput(RootTree.check(dir, "test"), "postgres");
  try {
    const dead = new Deno.Command("/bin/true").spawn();
    await dead.status;
    Deno.writeTextFileSync(`${dir}/postgres.${dead.pid}.1.fifo`, "");
    Deno.writeTextFileSync(`${dir}/notes.txt`, "");
    removeStaleFifos(RootTree.check(dir, "test"));
    deepEqual(
      [...Deno.readDirSync(dir)].map((e) => e.name).sort(),
      [
        mine.path.split("/").pop()!,
        "notes.txt",
      ].sort(),
    );
  } finally {
    mine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fifo: a directory that does not exist throws (callers fall back to a pipe)", () => {
  let threw = false;
  try {
    new FifoOutput(RootTree.check("/nonexistent-beyond-pg-dir", "test"), "x");
  } catch {
    threw = true;
  }
  assert(threw);
});
