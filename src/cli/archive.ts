/**
 * `beyond-pg archive %p %f` — postgres's archive_command. Runs for every WAL segment, so the
 * no-target path imports nothing and returns at once.
 */
export function main(args: string[]): Promise<number> {
  const target = Deno.env.get("BEYOND_PG_ARCHIVE_TARGET");
  if (!target) return Promise.resolve(0);
  console.error(
    `beyond-pg archive: archiving to ${target} is not available in this build (${args[1] ?? "?"})`,
  );
  return Promise.resolve(1);
}
