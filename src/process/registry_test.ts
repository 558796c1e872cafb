import assert from "node:assert/strict";

/** Every .ts file under `dir`, recursively. */
function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

Deno.test("every asynchronous spawn is tracked (PID 1's reaper must not take its exit status)", () => {
  const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
  const offenders: string[] = [];
  for (const path of sources(root)) {
    if (path.endsWith("/process/registry.ts")) continue;
    const text = Deno.readTextFileSync(path);
    // `new Deno.Command(...).spawn()` / `.output()` directly, or `x.spawn()` on a command.
    for (const m of text.matchAll(/\)\s*\.\s*output\(\)|\.spawn\(\)/g)) {
      const line = text.slice(0, m.index).split("\n").length;
      offenders.push(`${path.slice(root.length + 1)}:${line}`);
    }
  }
  assert.deepEqual(offenders, [], "use spawnTracked/outputTracked from process/registry.ts");
});
