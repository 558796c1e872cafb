import assert from "node:assert/strict";
import { settingRows } from "../settings/table.ts";
import { renderSettings, settingsJson } from "./settings.ts";

Deno.test("renderSettings() lists every setting under its group, secrets marked", () => {
  const text = renderSettings(settingRows());
  for (const row of settingRows()) assert.ok(text.includes(`  ${row.name}`), row.name);
  assert.ok(text.startsWith("Database\n  POSTGRES_PASSWORD [secret]  (default: required)\n"));
  assert.ok(text.includes("\n  BEYOND_PG_PORT  (default: 5432)\n      PgBouncer's port"));
  assert.ok(text.includes("\n  BEYOND_PG_TLS_NAMES  (default: none)\n"));
  assert.equal(text.includes("`"), false);
});

Deno.test("settingsJson() gives plain text, null for no default, and never a value", () => {
  const rows = JSON.parse(settingsJson(settingRows())) as Record<string, unknown>[];
  const byName = new Map(rows.map((r) => [r["name"], r]));
  assert.equal(byName.get("BEYOND_PG_PORT")?.["default"], "5432");
  assert.equal(byName.get("BEYOND_PG_ARCHIVE_TARGET")?.["default"], null);
  assert.deepEqual(byName.get("BEYOND_PG_S3_SECRET_KEY")?.["alsoNames"], [
    "BEYOND_PG_S3_SECRET_KEY_FILE",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY_FILE",
  ]);
  assert.equal(byName.get("BEYOND_PG_S3_SECRET_KEY")?.["secret"], true);
  assert.equal(rows.every((r) => !("value" in r)), true);
});
