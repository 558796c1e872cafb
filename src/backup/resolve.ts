/**
 * EFFECT: the archive a CLI command works on. A running supervisor has written
 * <run dir>/private/archive.json (root only); otherwise settings come from the environment like the
 * supervisor's, and the cluster is the one in PGDATA or, for an empty data root, the one that
 * owns the target prefix (its beyond-pg.json).
 */
import { buildContext, type Context } from "../boot/context.ts";
import { runDirFrom } from "../settings/defaults.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { clientFor, readOwner } from "../wal/archive.ts";
import { type ArchiveConfig, readArchiveConfig } from "../wal/config.ts";
import { archiveConfigFor } from "../boot/archive_config.ts";

export async function ownerSysid(ctx: Context): Promise<string> {
  const probe = archiveConfigFor(ctx, "0")!;
  let owner;
  try {
    owner = await readOwner(clientFor(probe), probe.target);
  } catch (error) {
    throw new OperatorError(errorMessage(error), { cause: error });
  }
  if (!owner) {
    throw new OperatorError(
      `no cluster has archived to ${probe.target} (no beyond-pg.json there); check BEYOND_PG_ARCHIVE_TARGET`,
    );
  }
  if (owner.major !== ctx.bins.major) {
    throw new OperatorError(
      `${probe.target} holds PostgreSQL ${owner.major} backups but this image runs PostgreSQL ${ctx.bins.major}; restore with an image for ${owner.major}`,
    );
  }
  return owner.system_identifier;
}

export function requireTarget(ctx: Context): void {
  if (!ctx.settings.s3) {
    throw new OperatorError(
      "no archive target: set BEYOND_PG_ARCHIVE_TARGET=s3://bucket/prefix and the S3 settings",
    );
  }
}

export async function resolveArchive(): Promise<ArchiveConfig> {
  const running = readArchiveConfig(runDirFrom());
  if (running) return running;
  const ctx = await buildContext();
  requireTarget(ctx);
  const sysid = ctx.trees.data.exists(`${ctx.layout.pgdata}/global/pg_control`)
    ? undefined
    : await ownerSysid(ctx);
  return archiveConfigFor(ctx, sysid)!;
}
