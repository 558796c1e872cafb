/**
 * Who may write where (see src/fs/tree.ts): our run dir is root's; the data root, the socket
 * dir and PgBouncer's directory are postgres's, and root works in them only as postgres.
 * Computed without writing anything; `makeTrees` creates what is missing.
 */
import type { Layout } from "../config/layout.ts";
import { ensureOwnedDir } from "../fs/handover.ts";
import type { Owner } from "../fs/identity.ts";
import { PgTree, RootTree, type Tree } from "../fs/tree.ts";
import { exists } from "../util/fs.ts";

export interface Trees {
  /** <run dir>: control socket, archive state, FIFOs, TLS copies (root-owned, 0755). */
  run: RootTree;
  /** <data root>: PGDATA, WAL, the restore spool (postgres). */
  data: PgTree;
  /** PostgreSQL's and PgBouncer's Unix sockets (postgres). */
  socket: PgTree;
  /** <run dir>/pgbouncer: pgbouncer.ini, the auth file, its pid file (postgres). */
  pgbouncer: PgTree;
  /** <run dir>/deno-postgres: DENO_DIR of the commands postgres runs (postgres). */
  denoPostgres: PgTree;
  owner: Owner | undefined;
}

/** The trees; throws (one line) when the run dir can be changed by someone other than root. */
export function treesFor(layout: Layout, owner: Owner | undefined): Trees {
  return {
    run: RootTree.check(layout.runDir, "BEYOND_PG_RUN_DIR"),
    data: new PgTree(layout.dataRoot, owner),
    socket: new PgTree(layout.socketDir, owner),
    pgbouncer: new PgTree(layout.pgbouncerDir, owner),
    denoPostgres: new PgTree(`${layout.runDir}/deno-postgres`, owner),
    owner,
  };
}

/** Create the directories (idempotent): the run dir as root's, the others as postgres's. */
export function makeTrees(t: Trees): void {
  t.run.create(0o755);
  ensureOwnedDir(t.data.base, t.owner, 0o700, "BEYOND_PG_DATA_ROOT");
  // An existing socket dir (Debian's /var/run/postgresql, maybe shared) is left as it is.
  if (!exists(t.socket.base)) {
    ensureOwnedDir(t.socket.base, t.owner, 0o2775, "BEYOND_PG_SOCKET_DIR");
  }
  t.run.ensureDir(t.pgbouncer.base, 0o700);
  t.run.give(t.pgbouncer.base, t.owner, 0o700);
  t.run.ensureDir(t.denoPostgres.base, 0o700);
  t.run.give(t.denoPostgres.base, t.owner, 0o700);
}

/** The tree a path of ours lives in (the most specific one): a path elsewhere is a bug. */
export function treeFor(t: Trees, path: string): Tree {
  const all: Tree[] = [t.pgbouncer, t.denoPostgres, t.data, t.socket, t.run];
  const hit = all
    .filter((x) => path === x.base || path.startsWith(`${x.base}/`))
    .sort((a, b) => b.base.length - a.base.length)[0];
  if (!hit) throw new Error(`${path} is in none of beyond-pg's directories`);
  return hit;
}

/**
 * The root tree the control socket's directory is made in: the run dir, or (a socket set
 * elsewhere) the directory above the socket's, which must be root's too.
 */
export function controlSocketTree(t: Trees, socket: string): RootTree {
  const dir = socket.slice(0, socket.lastIndexOf("/"));
  if (dir.startsWith(`${t.run.base}/`)) return t.run;
  const tree = RootTree.check(
    dir.slice(0, dir.lastIndexOf("/")) || "/",
    "BEYOND_PG_CONTROL_SOCKET",
  );
  tree.create(0o755);
  return tree;
}
