export const repoRoot = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/**
 * The PostgreSQL major the tests run against: the newest server installed (the host's 15, or
 * 18 in the pg18 lane; scripts/lane.sh). Object keys in the archive carry it (`pg18-<sysid>`).
 */
export const PG_MAJOR: number = (() => {
  try {
    const majors = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => Number(e.name))
      .filter((n) => Number.isInteger(n));
    return Math.max(...majors);
  } catch {
    return 15;
  }
})();
