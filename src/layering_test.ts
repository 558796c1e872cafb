/**
 * The shape of src/ (ARCHITECTURE.md, "Layers"): every folder sits on a floor and imports only
 * from floors below it, so the folder graph has no cycle and a change low down never needs a
 * change high up. FFI is reached only through ffi/mod.ts. A new folder must be given a floor
 * here (the test names it).
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url).pathname.replace(/\/$/, "");

/** Lowest first. A folder imports only from folders on lower floors. */
const FLOORS: string[][] = [
  ["ffi"],
  ["util"],
  ["fs", "settings", "auth", "s3", "resources", "logs", "metrics", "http", "security"],
  ["rpc", "pg", "config", "process"],
  ["tls", "wal"],
  ["boot"],
  ["supervise", "backup"],
  ["control", "image", "sink", "lifecycle"],
  ["app"],
  ["init"],
  ["cli"],
];

const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i] as const)));

function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;

/** "wal" for src/wal/x.ts, "ffi" for ffi/x.ts, undefined for anything else. */
function folderOf(path: string): string | undefined {
  const rel = path.slice(root.length + 1);
  if (rel.startsWith("ffi/")) return "ffi";
  const m = rel.match(/^src\/([^/]+)\//);
  return m?.[1];
}

interface Edge {
  from: string;
  to: string;
  file: string;
  target: string;
}

function edges(): Edge[] {
  const out: Edge[] = [];
  for (const dir of ["src", "ffi"]) {
    for (const file of sources(`${root}/${dir}`)) {
      const text = Deno.readTextFileSync(file);
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2]!;
        const target = new URL(spec, `file://${file}`).pathname;
        const from = folderOf(file);
        const to = folderOf(target);
        if (from && to && from !== to) {
          out.push({
            from,
            to,
            file: file.slice(root.length + 1),
            target: target.slice(root.length + 1),
          });
        }
      }
    }
  }
  return out;
}

Deno.test("layering: every folder of src/ has a floor", () => {
  const folders = [...Deno.readDirSync(`${root}/src`)].filter((e) => e.isDirectory).map((e) =>
    e.name
  );
  assert.deepEqual(folders.filter((f) => !floorOf.has(f)), []);
  assert.deepEqual(
    [...Deno.readDirSync(`${root}/src`)].filter((e) => e.isFile && !e.name.endsWith("_test.ts"))
      .map((e) => e.name),
    [],
    "src/ holds folders only (main.ts is at the top)",
  );
});

Deno.test("layering: folders import only from lower floors (no cycles)", () => {
  const bad = edges().filter((e) => floorOf.get(e.to)! >= floorOf.get(e.from)!)
    .map((e) => `${e.file} imports ${e.target} (${e.from} may not depend on ${e.to})`);
  assert.deepEqual(bad, []);
});

Deno.test("layering: FFI only through ffi/mod.ts", () => {
  const bad = edges().filter((e) => e.to === "ffi" && e.from !== "ffi" && e.target !== "ffi/mod.ts")
    .map((e) => `${e.file} imports ${e.target}`);
  assert.deepEqual(bad, []);
});
