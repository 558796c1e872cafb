/**
 * EFFECT: `PGDATA/pg_wal` is a link to `<data root>/wal` (absolute, as initdb -X makes it). A
 * volume mounted at another path (a fork or a copy booted elsewhere) still points at the old
 * path — at another cluster's WAL, if one lives there. So the link must name this volume's
 * WAL directory before postgres starts; it is re-pointed when that directory exists.
 */
import type { Layout } from "../config/layout.ts";
import type { PgTree } from "../fs/tree.ts";
import { OperatorError } from "../util/errors.ts";

/** Re-point pg_wal when it names another volume's WAL; the line to log when it did. */
export function checkWalLink(data: PgTree, layout: Layout): string | undefined {
  const link = `${layout.pgdata}/pg_wal`;
  const target = data.readLink(link);
  if (target === undefined || target.replace(/\/+$/, "") === layout.walDir) return undefined;
  if (!data.stat(layout.walDir)?.isDirectory) {
    throw new OperatorError(
      `Cannot start: ${link} points at ${target}, outside this volume, and ${layout.walDir} does not exist; put this volume's WAL directory there (copy the volume whole: data and wal)`,
      { exitCode: 2 },
    );
  }
  data.remove(link, false);
  data.symlink(layout.walDir, link);
  return `pg_wal pointed at ${target} (the volume was moved or copied); it now points at ${layout.walDir}`;
}
