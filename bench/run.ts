/**
 * `deno task bench [name...]`: run the benchmarks (each prints its ratios side by side).
 * With no names, runs every bench/*.ts except the helpers.
 */
const dir = new URL(".", import.meta.url).pathname;
const skip = new Set(["lib.ts", "run.ts"]);
const names = Deno.args.filter((a) => !a.startsWith("-"));
const flags = Deno.args.filter((a) => a.startsWith("-"));
const all = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) =>
  n.endsWith(".ts") && !skip.has(n)
).sort();
const chosen = names.length ? all.filter((n) => names.some((x) => n.startsWith(x))) : all;
let failed = 0;
for (const name of chosen) {
  console.log(`\n=== bench/${name}`);
  const p = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${dir}${name}`, ...flags],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!p.success) failed++;
}
Deno.exit(failed ? 1 : 0);
