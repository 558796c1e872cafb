/** Defaults that more than one module needs before (or without) parsing every setting. */

/** BEYOND_PG_RUN_DIR's default. */
export const defaultRunDir = "/run/beyond-pg";

/** The run dir from the environment alone (the commands postgres runs per WAL file). */
export function runDirFrom(env: { get(key: string): string | undefined } = Deno.env): string {
  return env.get("BEYOND_PG_RUN_DIR") || defaultRunDir;
}
