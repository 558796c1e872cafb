/**
 * README's configuration table from the settings table (src/settings/table.ts): prints it, or
 * with --write puts it into README.md between its markers. src/settings/readme_test.ts fails
 * while the two differ.
 *
 *   deno run -A scripts/settings-table.ts [--write]
 */
import { readmeRows, renderTable, withTable } from "../src/settings/readme.ts";

const table = renderTable(readmeRows());
if (Deno.args.includes("--write")) {
  const path = new URL("../README.md", import.meta.url);
  Deno.writeTextFileSync(path, withTable(Deno.readTextFileSync(path), table));
} else {
  console.log(table);
}
