/**
 * `deno task bench [name...] [--runs N]`: run the benchmarks (each prints its ratios side by
 * side). With no names, runs every bench/*.ts except the helpers. Flags pass through to each
 * benchmark; `--runs N` takes its value with it.
 */
const dir = new URL(".", import.meta.url).pathname;
const skip = new Set(["lib.ts", "run.ts"]);
/** Flags that take the next argument as their value. */
const WITH_VALUE = new Set(["--runs"]);
const names: string[] = [];
const flags: string[] = [];
for (let i = 0; i < Deno.args.length; i++) {
  const a = Deno.args[i]!;
  if (!a.startsWith("-")) names.push(a);
  else if (WITH_VALUE.has(a) && i + 1 < Deno.args.length) flags.push(a, Deno.args[++i]!);
  else flags.push(a);
}
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
