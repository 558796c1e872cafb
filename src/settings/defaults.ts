/**
 * Defaults that code needs before (or without) parsing every setting: the commands postgres
 * runs per WAL file import this file alone, so it imports nothing. The settings table
 * (table.ts) takes its defaults for these settings from here.
 */

/** BEYOND_PG_RUN_DIR's default. */
export const defaultRunDir = "/run/beyond-pg";

/** BEYOND_PG_SEED_DIR's default. */
export const defaultSeedDir = "/usr/lib/beyond-pg/seed";

/** BEYOND_PG_DATA_DEVICE's default: the second virtio disk of our VM. */
export const defaultDataDevice = "/dev/vdb";

/** BEYOND_PG_RESTORE_RETRY_SECONDS's default. */
export const defaultRestoreRetrySeconds = 30;

/** BEYOND_PG_CONTROL_SOCKET's default, in the run dir. */
export function controlSocketIn(runDir: string): string {
  return `${runDir}/control/control.sock`;
}

/** BEYOND_PG_S3_ENDPOINT's default (AWS). */
export function s3EndpointFor(region: string): string {
  return `https://s3.${region}.amazonaws.com`;
}

/** The run dir from the environment alone (the commands postgres runs per WAL file). */
export function runDirFrom(env: { get(key: string): string | undefined } = Deno.env): string {
  return env.get("BEYOND_PG_RUN_DIR") || defaultRunDir;
}
