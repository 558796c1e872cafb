import assert from "node:assert/strict";
import { groupTitles, type Setting } from "./setting.ts";
import { knownNames, settingRows, settingsTable } from "./table.ts";

const repo = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Every non-test .ts file under `dir`, recursively. */
function* sources(dir: string): Generator<string> {
  for (const e of Deno.readDirSync(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) yield* sources(path);
    else if (e.name.endsWith(".ts") && !e.name.endsWith("_test.ts")) yield path;
  }
}

Deno.test("every setting name the code mentions is in the settings table", () => {
  const known = knownNames();
  const seen = new Set<string>();
  const missing: string[] = [];
  for (const path of [...sources(`${repo}/src`), `${repo}/main.ts`]) {
    const text = Deno.readTextFileSync(path);
    for (const m of text.matchAll(/\b(?:BEYOND|POSTGRES|AWS)_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      seen.add(m[0]);
      if (!known.has(m[0])) missing.push(`${path.slice(repo.length + 1)}: ${m[0]}`);
    }
  }
  assert.deepEqual([...new Set(missing)], [], "add these to src/settings/table.ts");
  assert.ok(seen.size > 40, `the scan found only ${seen.size} names`);
});

Deno.test("every row is read: by parseSettings, or by the module its usedIn names", () => {
  const parser = Deno.readTextFileSync(`${repo}/src/settings/settings.ts`);
  for (const row of settingRows()) {
    if (row.usedIn) {
      assert.ok(
        new RegExp(`\\b${row.name}\\b`).test(Deno.readTextFileSync(`${repo}/${row.usedIn}`)),
        `${row.usedIn} does not name ${row.name}`,
      );
    } else {
      assert.ok(parser.includes(`get("${row.name}")`), `parseSettings does not read ${row.name}`);
    }
  }
});

Deno.test("every default in the table parses (the default people see is the one used)", () => {
  const ctx = {
    major: 17,
    readFile: () => "-----BEGIN CERTIFICATE-----\n",
    stat: () => undefined,
  };
  for (const [name, row] of Object.entries(settingsTable)) {
    if (!("parse" in row) || row.default === undefined) continue;
    assert.doesNotThrow(() => (row as Setting).parse(undefined, { ...ctx, name }), name);
  }
});

Deno.test("rows come in display groups, each doc is one line a markdown table can hold", () => {
  const order = Object.keys(groupTitles);
  const groups = settingRows().map((r) => order.indexOf(r.group));
  assert.ok(groups.every((g) => g >= 0), "a row names an unknown group");
  assert.deepEqual(groups, [...groups].sort((a, b) => a - b), "keep each group's rows together");
  for (const row of settingRows()) {
    assert.match(row.doc, /^[^\n|]+$/, row.name);
    assert.match(row.default, /^[^\n|]+$/, row.name);
  }
});

Deno.test("secrets are marked: the passwords, the S3 secret key, tokens and keys", () => {
  const secrets = settingRows().filter((r) => r.secret).map((r) => r.name);
  assert.deepEqual(secrets, [
    "POSTGRES_PASSWORD",
    "BEYOND_PG_S3_SECRET_KEY",
    "BEYOND_PG_S3_SESSION_TOKEN",
    "BEYOND_PG_S3_CREDENTIALS_TOKEN",
    "BEYOND_PG_ARCHIVE_ENCRYPTION_KEY",
    "BEYOND_PG_REPLICATION_PASSWORD",
    "BEYOND_PG_WAL_SINK_TOKEN",
  ]);
  const names = knownNames();
  for (
    const n of [
      "POSTGRES_PASSWORD_FILE",
      "AWS_SECRET_ACCESS_KEY",
      "AWS_ACCESS_KEY_ID_FILE",
      "AWS_SESSION_TOKEN",
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ]
  ) {
    assert.ok(names.has(n), n);
  }
});
