/**
 * The archive's config for this cluster, from the settings and pg_control: what the archive
 * service, backups and restore use (the private copy postgres's commands read is written by
 * app/archiving.ts).
 */
import type { Context } from "./context.ts";
import type { S3Settings } from "../settings/settings.ts";
import type { SseSetting } from "../settings/parsers.ts";
import type { Sse } from "../s3/sse.ts";
import { OperatorError } from "../util/errors.ts";
import { type ArchiveConfig, controlTimeline, systemIdentifierOf } from "../wal/config.ts";

/** `sysid`: of the cluster in PGDATA unless given (a restore into an empty data root). */
export function archiveConfigFor(ctx: Context, sysid?: string): ArchiveConfig | undefined {
  const s3 = ctx.settings.s3;
  if (!s3 || !ctx.settings.archiveTarget) return undefined;
  return {
    target: ctx.settings.archiveTarget.url,
    endpoint: s3.endpoint,
    region: s3.region,
    ...credentialsOf(s3),
    attempts: s3.attempts,
    urlStyle: s3.urlStyle,
    ...(s3.sse ? { sse: sseOf(s3.sse) } : {}),
    ...(s3.storageClass ? { storageClass: s3.storageClass } : {}),
    ...(s3.encryptionKeys.length
      ? { encryptionKeys: s3.encryptionKeys.map((k) => k.reveal()) }
      : {}),
    // Read and checked with the settings, before anything was written.
    caCerts: s3.caPem ? [s3.caPem] : [],
    codec: s3.codec,
    parallel: s3.parallel,
    idleMs: s3.idleMs,
    major: ctx.bins.major,
    sysid: sysid ?? clusterSystemIdentifier(ctx),
    pgdata: ctx.layout.pgdata,
    walDir: `${ctx.layout.pgdata}/pg_wal`,
    socket: `${ctx.layout.runDir}/archive/archive.sock`,
    binDir: ctx.bins.binDir,
    pgVersion: ctx.bins.version,
    socketDir: ctx.layout.socketDir,
    port: ctx.settings.directPort,
    ...(ctx.runAs.switchTo ? { runAs: ctx.runAs.switchTo } : {}),
  };
}

/** The credentials as the private config carries them (root only: wal/config.ts). */
function credentialsOf(s3: S3Settings): Pick<
  ArchiveConfig,
  | "accessKeyId"
  | "secretAccessKey"
  | "sessionToken"
  | "credentialsFile"
  | "credentialsUrl"
  | "credentialsToken"
> {
  const c = s3.credentials;
  switch (c.kind) {
    case "keys":
      return {
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey.reveal(),
        ...(c.sessionToken ? { sessionToken: c.sessionToken.reveal() } : {}),
      };
    case "file":
      return { accessKeyId: "", secretAccessKey: "", credentialsFile: c.path };
    case "url":
      return {
        accessKeyId: "",
        secretAccessKey: "",
        credentialsUrl: c.url,
        ...(c.token ? { credentialsToken: c.token.reveal() } : {}),
      };
  }
}

function sseOf(s: SseSetting): Sse {
  return s.kind === "c" ? { kind: "c", key: s.key.reveal() } : s;
}

/** The system identifier of the cluster in PGDATA (pg_control, read as postgres). */
export function clusterSystemIdentifier(ctx: Context): string {
  const control = ctx.trees.data.readBytes(`${ctx.layout.pgdata}/global/pg_control`);
  if (!control) throw new OperatorError(`${ctx.layout.pgdata}/global/pg_control is missing`);
  return systemIdentifierOf(control);
}

/** The timeline of the cluster in PGDATA (its latest checkpoint's, from pg_control). */
export function clusterTimeline(ctx: Context): number {
  const control = ctx.trees.data.readBytes(`${ctx.layout.pgdata}/global/pg_control`);
  return control ? controlTimeline(control) : 1;
}
