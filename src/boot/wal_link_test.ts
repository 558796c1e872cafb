import assert from "node:assert/strict";
import { layoutFor } from "../config/layout.ts";
import { PgTree } from "../fs/tree.ts";
import { checkWalLink } from "./wal_link.ts";

function volume(root: string) {
  const layout = layoutFor({
    dataRoot: `${root}/data`,
    runDir: `${root}/run`,
    socketDir: `${root}/sock`,
    hooksDir: `${root}/hooks`,
  });
  Deno.mkdirSync(layout.pgdata, { recursive: true });
  return { layout, tree: new PgTree(layout.dataRoot, undefined) };
}

Deno.test("pg_wal: a link to this volume's WAL is left alone; one to another path is re-pointed", () => {
  const root = Deno.makeTempDirSync({ prefix: "h8-wal-link-" });
  try {
    const { layout, tree } = volume(root);
    Deno.mkdirSync(layout.walDir);
    Deno.symlinkSync(layout.walDir, `${layout.pgdata}/pg_wal`);
    assert.equal(checkWalLink(tree, layout), undefined);
    Deno.removeSync(`${layout.pgdata}/pg_wal`);
    Deno.symlinkSync("/elsewhere/data/wal", `${layout.pgdata}/pg_wal`);
    assert.match(checkWalLink(tree, layout)!, /pointed at \/elsewhere\/data\/wal/);
    assert.equal(Deno.readLinkSync(`${layout.pgdata}/pg_wal`), layout.walDir);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("pg_wal: a link elsewhere with no WAL directory on this volume stops with the fix", () => {
  const root = Deno.makeTempDirSync({ prefix: "h8-wal-link-" });
  try {
    const { layout, tree } = volume(root);
    Deno.symlinkSync("/elsewhere/data/wal", `${layout.pgdata}/pg_wal`);
    assert.throws(() => checkWalLink(tree, layout), /copy the volume whole/);
    // A plain directory (no link) is not ours to judge.
    Deno.removeSync(`${layout.pgdata}/pg_wal`);
    Deno.mkdirSync(`${layout.pgdata}/pg_wal`);
    assert.equal(checkWalLink(tree, layout), undefined);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});
