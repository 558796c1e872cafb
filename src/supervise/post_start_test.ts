import assert from "node:assert/strict";
import type { ExtensionSpec } from "../config/manifest.ts";
import { planExtensions } from "./post_start.ts";

const spec = (name: string, o: Partial<ExtensionSpec> = {}): ExtensionSpec => ({
  name,
  preload: false,
  create: true,
  library: name,
  database: undefined,
  settings: {},
  packages: {},
  ...o,
});

Deno.test("planExtensions(): create the missing, update what the image ships newer, keep the rest", () => {
  const steps = planExtensions(
    [spec("vector"), spec("pg_trgm"), spec("hypopg"), spec("pg_search")],
    [],
    [
      { name: "vector", default_version: "0.8.7", installed_version: null },
      { name: "pg_trgm", default_version: "1.6", installed_version: "1.4" },
      { name: "hypopg", default_version: "1.4.2", installed_version: "1.4.2" },
    ],
  );
  assert.deepEqual(steps, [
    { name: "vector", action: "create" },
    { name: "pg_trgm", action: "update", from: "1.4", to: "1.6" },
    { name: "hypopg", action: "current" },
    { name: "pg_search", action: "unavailable" },
  ]);
});

Deno.test("planExtensions(): a preload extension whose library is not loaded is unavailable", () => {
  const steps = planExtensions(
    [spec("pg_cron", { preload: true }), spec("pg_stat_statements", { preload: true })],
    ["pg_stat_statements"],
    [
      { name: "pg_cron", default_version: "1.6", installed_version: null },
      { name: "pg_stat_statements", default_version: "1.11", installed_version: null },
    ],
  );
  assert.deepEqual(steps.map((s) => s.action), ["unavailable", "create"]);
});

Deno.test("planExtensions(): an image swap to a newer major's packages updates every installed extension once", () => {
  const installed = [
    { name: "vector", default_version: "0.8.7", installed_version: "0.8.0" },
    { name: "postgis", default_version: "3.6.0", installed_version: "3.5.2" },
  ];
  const first = planExtensions([spec("vector"), spec("postgis")], [], installed);
  assert.deepEqual(first.map((s) => s.action), ["update", "update"]);
  const after = installed.map((r) => ({ ...r, installed_version: r.default_version }));
  assert.deepEqual(
    planExtensions([spec("vector"), spec("postgis")], [], after).map((s) => s.action),
    ["current", "current"],
  );
});
