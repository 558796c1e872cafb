/**
 * Source rules of the trust boundary (like the spawn rule in process/registry_test.ts): every
 * change to the file system goes through src/fs/ (whose trees say who may write where), every
 * child process through process/command.ts (an allow-listed environment), and the unchecked
 * system tree only through src/init/.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

function offenders(pattern: RegExp, allowed: (file: string) => boolean): string[] {
  const out: string[] = [];
  for (const dir of ["src", "ffi"]) {
    for (const path of sources(`${root}/${dir}`)) {
      const rel = path.slice(root.length + 1);
      if (allowed(rel)) continue;
      const text = Deno.readTextFileSync(path);
      for (const m of text.matchAll(pattern)) {
        out.push(`${rel}:${text.slice(0, m.index).split("\n").length}: ${m[0]}`);
      }
    }
  }
  return out;
}

const CHANGES =
  /Deno\.(writeFile|writeTextFile|remove|chmod|chown|mkdir|rename|symlink|link|truncate|copyFile|create|makeTemp(Dir|File)|utime)(Sync)?\(/g;

Deno.test("rule: no file-system change outside src/fs/ (root acts in postgres's directories only as postgres)", () => {
  assert.deepEqual(offenders(CHANGES, (f) => f.startsWith("src/fs/")), []);
});

Deno.test("rule: files are opened only in src/fs/ (and devices read by PID 1)", () => {
  assert.deepEqual(
    offenders(/Deno\.open(Sync)?\(/g, (f) => f.startsWith("src/fs/") || f === "src/init/system.ts"),
    [],
  );
});

Deno.test("rule: every child process is made by process/command.ts (clearEnv + allow-list)", () => {
  assert.deepEqual(offenders(/new Deno\.Command\(/g, (f) => f === "src/process/command.ts"), []);
});

Deno.test("rule: the unchecked system tree is PID 1's alone", () => {
  assert.deepEqual(
    offenders(/RootTree\.system\(\)/g, (f) => f.startsWith("src/init/") || f === "src/fs/tree.ts"),
    [],
  );
});
