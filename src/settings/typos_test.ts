import assert from "node:assert/strict";
import { editDistance, typoWarnings } from "./typos.ts";

Deno.test("editDistance() counts insertions, deletions and substitutions", () => {
  assert.equal(editDistance("BEYOND_PG_PORT", "BEYOND_PG_PORT"), 0);
  assert.equal(editDistance("BEYOND_PG_PROT", "BEYOND_PG_PORT"), 2);
  assert.equal(editDistance("kitten", "sitting"), 3);
  assert.equal(editDistance("a", "abcdef", 2), 3);
});

Deno.test("typoWarnings() names the setting a near miss meant, one line each", () => {
  assert.deepEqual(
    typoWarnings({
      BEYOND_PG_PROT: "5432",
      POSTGRES_PASWORD: "x",
      BEYOND_PG_ARCHIVE_TARGE: "s3://b/p",
      BEYOND_PG_PORT: "5432",
    }),
    [
      "setting BEYOND_PG_ARCHIVE_TARGE is unknown and ignored; did you mean BEYOND_PG_ARCHIVE_TARGET?",
      "setting BEYOND_PG_PROT is unknown and ignored; did you mean BEYOND_PG_PORT?",
      "setting POSTGRES_PASWORD is unknown and ignored; did you mean POSTGRES_PASSWORD?",
    ],
  );
});

Deno.test("typoWarnings() leaves alone names far from every setting, and known names", () => {
  assert.deepEqual(
    typoWarnings({
      BEYOND_PG_DIST: "/tmp/build/dist",
      BEYOND_PG_CONF: "/tmp/build/conf",
      POSTGRES_USER: "app",
      POSTGRES_DB: "app",
      AWS_ACCESS_KEY_ID_FILE: "/k",
      PATH: "/bin",
    }),
    [],
  );
});
