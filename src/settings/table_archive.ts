/** PURE: the settings table's archive and S3 rows (table.ts merges them). */
import { defaultRestoreRetrySeconds } from "./defaults.ts";
import {
  absolutePath,
  archiveTarget,
  bool,
  choice,
  codec,
  httpUrl,
  keyList,
  pemFile,
  secret,
  sse,
  storageClass,
  text,
  wholeNumber,
} from "./parsers.ts";
import { external, setting } from "./setting.ts";

export const archiveSettings = {
  BEYOND_PG_ARCHIVE_TARGET: setting({
    group: "archive",
    doc:
      "`s3://bucket/prefix`: WAL archiving and backups; `off` stops archiving a volume on purpose",
    parse: archiveTarget,
  }),
  BEYOND_PG_S3_ENDPOINT: setting({
    group: "archive",
    shown: "`https://s3.<region>.amazonaws.com`",
    doc: "the S3 API (any S3-compatible store)",
    parse: httpUrl,
  }),
  BEYOND_PG_S3_REGION: setting({
    group: "archive",
    default: "us-east-1",
    aliases: ["AWS_REGION"],
    doc: "the S3 region",
    parse: text,
  }),
  BEYOND_PG_S3_ACCESS_KEY: setting({
    group: "archive",
    shown: "required with a target",
    aliases: ["AWS_ACCESS_KEY_ID"],
    fileForm: true,
    doc: "S3 access key id",
    parse: text,
  }),
  BEYOND_PG_S3_SECRET_KEY: setting({
    group: "archive",
    shown: "required with a target",
    aliases: ["AWS_SECRET_ACCESS_KEY"],
    fileForm: true,
    secret: true,
    doc: "S3 secret key",
    parse: secret,
  }),
  BEYOND_PG_S3_SESSION_TOKEN: setting({
    group: "archive",
    shown: "none",
    aliases: ["AWS_SESSION_TOKEN"],
    fileForm: true,
    secret: true,
    doc: "session token of temporary credentials (with the key pair)",
    parse: secret,
  }),
  BEYOND_PG_S3_CREDENTIALS_FILE: setting({
    group: "archive",
    shown: "none",
    doc:
      "instead of the key pair: a JSON file (`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`) the platform rewrites; re-read when it changes and before expiry (root's, not writable by others)",
    parse: absolutePath,
  }),
  BEYOND_PG_S3_CREDENTIALS_URL: setting({
    group: "archive",
    shown: "none",
    aliases: ["AWS_CONTAINER_CREDENTIALS_FULL_URI"],
    doc:
      "instead of the key pair: an HTTP endpoint serving that JSON (container credentials); read again before expiry",
    parse: httpUrl,
  }),
  BEYOND_PG_S3_CREDENTIALS_TOKEN: setting({
    group: "archive",
    shown: "none",
    aliases: ["AWS_CONTAINER_AUTHORIZATION_TOKEN"],
    fileForm: true,
    secret: true,
    doc: "`Authorization` header for the credentials endpoint",
    parse: secret,
  }),
  BEYOND_PG_S3_ATTEMPTS: setting({
    group: "archive",
    default: "8",
    doc:
      "attempts per S3 request on 5xx, throttling, resets and timeouts (exponential backoff with jitter; 1: no retry)",
    parse: wholeNumber(1, 30),
  }),
  BEYOND_PG_S3_URL_STYLE: setting({
    group: "archive",
    default: "auto",
    doc:
      "`path` (`host/bucket/key`), `virtual` (`bucket.host/key`), or `auto`: virtual on AWS unless the bucket name has a dot, else path",
    parse: choice(["auto", "path", "virtual"] as const),
  }),
  BEYOND_PG_S3_SSE: setting({
    group: "archive",
    shown: "none",
    doc:
      "server-side encryption: `aes256` (SSE-S3), `kms:<key id>` (SSE-KMS), `c:<key file>` (SSE-C: a 256-bit key as base64 or hex; needs HTTPS)",
    parse: sse,
  }),
  BEYOND_PG_S3_STORAGE_CLASS: setting({
    group: "archive",
    shown: "the bucket's",
    doc: "storage class of stored objects (`STANDARD_IA`, …)",
    parse: storageClass,
  }),
  BEYOND_PG_S3_CA_FILE: setting({
    group: "archive",
    shown: "system roots",
    doc: "PEM CA to trust for a self-hosted store (read at start)",
    parse: pemFile,
  }),
  BEYOND_PG_S3_IDLE_TIMEOUT: setting({
    group: "archive",
    default: "30",
    doc: "seconds without a byte moving before an S3 request fails (a slow store is never cut off)",
    parse: wholeNumber(1, 3600),
  }),
  BEYOND_PG_ARCHIVE_ENCRYPTION_KEY: setting({
    group: "archive",
    shown: "none (not encrypted)",
    fileForm: true,
    secret: true,
    doc:
      "client-side AES-256-GCM of WAL and backups: 256-bit keys (base64 or hex, `openssl rand -base64 32`) separated by commas or newlines; the first encrypts, all decrypt (rotate: put the new key first, keep old ones until their backups are pruned)",
    parse: keyList,
  }),
  BEYOND_PG_ARCHIVE_CODEC: setting({
    group: "archive",
    default: "zstd",
    doc: "WAL compression: `zstd`, `gzip` or `none`",
    parse: codec,
  }),
  BEYOND_PG_ARCHIVE_PARALLEL: setting({
    group: "archive",
    default: "4",
    doc: "WAL uploads in flight ahead of postgres (1 to 64)",
    parse: wholeNumber(1, 64),
  }),
  BEYOND_PG_ARCHIVE_TIMEOUT: setting({
    group: "archive",
    default: "60",
    doc: "`archive_timeout` in seconds with a target (0: off)",
    parse: wholeNumber(0, 86400),
  }),
  BEYOND_PG_ARCHIVE_PROMOTE: setting({
    group: "archive",
    default: "false",
    doc: "`true`: this cluster becomes its prefix's primary (lineage)",
    parse: bool,
  }),
  BEYOND_PG_RESTORE_RETRY_SECONDS: external({
    group: "archive",
    default: String(defaultRestoreRetrySeconds),
    doc: "`restore-wal` run by hand: how long an unreachable store is retried before exit 126",
    usedIn: "src/cli/restore_wal.ts",
  }),
};
