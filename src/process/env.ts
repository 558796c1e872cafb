/**
 * Children get an allow-listed environment, never ours: the password (and anything else a
 * platform put in our environment) must not reach postgres, PgBouncer or hooks.
 */

const passThrough = ["PATH", "TZ", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TERM"];

export function childEnv(
  extra: Record<string, string> = {},
  from = Deno.env.toObject(),
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const key of passThrough) {
    const value = from[key];
    if (value !== undefined) env[key] = value;
  }
  env["PATH"] ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  env["LANG"] ??= "C.UTF-8";
  return { ...env, ...extra };
}
