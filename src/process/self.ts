/**
 * How to run this program again from a shell (postgres's archive_command/restore_command).
 * The compiled binary is its own path; the bundle's launcher exports BEYOND_PG_SELF; in
 * development it is `deno run` of main.ts with the repository's config.
 */

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

export function selfArgv(): string[] {
  const explicit = Deno.env.get("BEYOND_PG_SELF");
  if (explicit) return [explicit];
  const exec = Deno.execPath();
  if (!/\/deno$/.test(exec)) return [exec]; // deno compile: the binary is us
  // --no-config: what postgres runs (archive, restore-wal) imports no npm package, so it must
  // not make Deno resolve the project's npm dependencies (as another user, maybe offline).
  const main = new URL("../../main.ts", import.meta.url).pathname;
  return [exec, "run", "-A", "--quiet", "--no-prompt", "--no-config", main];
}

export function selfCommand(...args: string[]): string {
  return [...selfArgv().map(shellQuote), ...args].join(" ");
}
