import assert from "node:assert/strict";
import { settingRows } from "./table.ts";
import { parseReadmeTable, readmeRows, renderTable, withTable } from "./readme.ts";

const readme = Deno.readTextFileSync(new URL("../../README.md", import.meta.url));
const fix = "run `deno run -A scripts/settings-table.ts --write`";

Deno.test("README's configuration table lists exactly the settings in the table", () => {
  const listed = parseReadmeTable(readme).map((r) => r.name);
  const expected = readmeRows().map((r) => r.name);
  assert.ok(listed.length > 0, `README.md has no settings table; ${fix}`);
  const notInReadme = expected.filter((n) => !listed.includes(n));
  const notInTable = listed.filter((n) => !expected.includes(n));
  assert.deepEqual(notInReadme, [], `in src/settings/table.ts, not in README.md; ${fix}`);
  assert.deepEqual(notInTable, [], `in README.md, not in src/settings/table.ts (or internal)`);
});

Deno.test("README's configuration table shows the table's defaults and docs", () => {
  assert.deepEqual(parseReadmeTable(readme), readmeRows(), fix);
});

Deno.test("README leaves out only the internal settings", () => {
  const internal = settingRows().filter((r) => r.internal).map((r) => r.name);
  assert.deepEqual(internal, ["BEYOND_PG_HOOK_STAGE", "BEYOND_PG_SELF"]);
});

Deno.test("renderTable() and parseReadmeTable() round-trip through a README", () => {
  const rows = [{ name: "BEYOND_X", default: "`1`", doc: "a `code` doc" }];
  const text = withTable(
    "intro\n<!-- settings:begin (written by scripts/settings-table.ts) -->\nold\n<!-- settings:end -->\nrest\n",
    renderTable(rows),
  );
  assert.deepEqual(parseReadmeTable(text), rows);
  assert.ok(text.startsWith("intro\n") && text.endsWith("<!-- settings:end -->\nrest\n"));
});
