/**
 * PURE: keep only what the installed server knows. An entry marked `since` a newer major is
 * dropped quietly (it is meant for that major only); any other setting the server does not
 * list in `postgres --describe-config` is dropped with one warning line; settings of
 * extensions (prefix.name) are gated by library presence before they get here.
 */
import type { ConfEntry } from "./conf_file.ts";

export interface ServerCaps {
  major: number;
  /** Names from `postgres --describe-config`. */
  knownSettings: ReadonlySet<string>;
  /** Shared libraries in the server's pkglibdir (names without .so). */
  libraries: ReadonlySet<string>;
  /** Built --with-lz4 (wal_compression = lz4). */
  lz4: boolean;
}

export function gateEntries(
  entries: readonly ConfEntry[],
  caps: ServerCaps,
  file: string,
): { entries: ConfEntry[]; warnings: string[] } {
  const kept: ConfEntry[] = [];
  const warnings: string[] = [];
  for (const entry of entries) {
    if (entry.since !== undefined && caps.major < entry.since) continue;
    if (entry.name.includes(".") || caps.knownSettings.has(entry.name)) kept.push(entry);
    else {warnings.push(
        `${file}: skipping ${entry.name}: PostgreSQL ${caps.major} does not know it`,
      );}
  }
  return { entries: kept, warnings };
}

/** PURE: parse `postgres --describe-config` (tab-separated; name first). */
export function parseDescribeConfig(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split("\n")) {
    const name = line.split("\t", 1)[0]?.trim();
    if (name) names.add(name);
  }
  return names;
}
