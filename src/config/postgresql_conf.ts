/**
 * PURE: the one edit to the stock postgresql.conf — an include_dir line, at the END so that
 * conf.d/ wins over the values initdb wrote above it (a line near the top would lose to them).
 */

export const INCLUDE_MARKER =
  "# beyond-pg: layered configuration (00-beyond, 01-tuning, ..., 99-user)";

export function withIncludeDir(content: string, confDir: string): string {
  const lines = content.split("\n");
  const kept: string[] = [];
  for (let k = 0; k < lines.length; k++) {
    const line = lines[k]!;
    if (line === INCLUDE_MARKER) {
      k++; // drop the include line that follows our marker; re-added below
      continue;
    }
    kept.push(line);
  }
  while (kept.length && kept[kept.length - 1] === "") kept.pop();
  kept.push("", INCLUDE_MARKER, `include_dir = '${confDir.replaceAll("'", "''")}'`, "");
  return kept.join("\n");
}
