import assert from "node:assert/strict";
import { selfArgv, shellQuote } from "./self.ts";

Deno.test("selfArgv under deno run names the repository's main.ts", () => {
  const argv = selfArgv();
  const main = argv.at(-1)!;
  assert.ok(main.endsWith("/main.ts"), main);
  assert.ok(Deno.statSync(main).isFile, `${main} exists`);
});

Deno.test("shellQuote leaves plain words and quotes the rest", () => {
  assert.equal(shellQuote("/usr/bin/deno"), "/usr/bin/deno");
  assert.equal(shellQuote("it's"), `'it'"'"'s'`);
});
