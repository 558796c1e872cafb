import type { Tree } from "../fs/tree.ts";

/**
 * Bad user configuration: when postgres fails to start and 99-user.conf is the cause, it is
 * moved aside (renamed, content untouched) and postgres starts without it.
 */

/** PURE: setting names assigned in a postgresql.conf-style file. */
export function settingNames(text: string): string[] {
  const names: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*$/, "").trim();
    const m = line.match(/^([A-Za-z_][A-Za-z0-9_.]*)\s*(=|\s)/);
    if (m) names.push(m[1]!.toLowerCase());
  }
  return names;
}

/**
 * PURE: is 99-user.conf to blame for a failed start? Yes when postgres names the file, or
 * names a setting that 99-user.conf assigns (its values win over ours, so it set the bad one).
 */
export function blameUserConf(stderrTail: readonly string[], userConfText: string): boolean {
  if (stderrTail.some((l) => l.includes("99-user.conf"))) return true;
  const names = settingNames(userConfText);
  if (names.length === 0) return false;
  return stderrTail.some((line) => {
    if (!/(FATAL|PANIC|LOG|HINT|DETAIL|ERROR)/.test(line)) return false;
    const lower = line.toLowerCase();
    return names.some((n) =>
      lower.includes(`"${n}"`) || new RegExp(`\\b${n.replaceAll(".", "\\.")}\\b`).test(lower)
    );
  });
}

/**
 * EFFECT: move the file aside and leave an empty one; returns the new path. PGDATA is
 * postgres's, so this runs as postgres (`data`): the new file is created, never written through.
 */
export function quarantineUserConf(data: Tree, path: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  const aside = `${path}.bad-${stamp}`;
  data.rename(path, aside);
  data.createOnce(
    path,
    `# beyond-pg moved the previous contents to ${
      aside.split("/").pop()
    } because postgres could not start with them.\n`,
    0o644,
  );
  return aside;
}
