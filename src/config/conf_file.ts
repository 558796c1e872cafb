/** PURE: postgresql.conf syntax. */

export type ConfValue = string | number | boolean;

export interface ConfEntry {
  name: string;
  value: ConfValue;
  /** One short line saying why (rendered above the setting). */
  why?: string;
  /** Only from this PostgreSQL major on: dropped without a warning below it (gate.ts). */
  since?: number;
}

/** Quote a value the way postgresql.conf reads it back: numbers bare, everything else quoted. */
export function quoteConfValue(value: ConfValue): string {
  if (typeof value === "number") return String(value);
  if (typeof value === "boolean") return value ? "on" : "off";
  return `'${value.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

export function renderConf(header: string, entries: readonly ConfEntry[]): string {
  const lines = header.split("\n").map((l) => (l ? `# ${l}` : "#"));
  for (const entry of entries) {
    if (entry.why) lines.push(`# ${entry.why}`);
    lines.push(`${entry.name} = ${quoteConfValue(entry.value)}`);
  }
  return lines.join("\n") + "\n";
}
