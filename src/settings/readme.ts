/**
 * PURE: README's configuration table, rendered from the settings table (internal rows left
 * out) and read back, so that a test can hold the two together. scripts/settings-table.ts
 * writes it.
 */
import { type SettingRow, settingRows } from "./table.ts";

export const tableBegin = "<!-- settings:begin (written by scripts/settings-table.ts) -->";
export const tableEnd = "<!-- settings:end -->";

export interface ReadmeRow {
  name: string;
  default: string;
  doc: string;
}

/** The rows README lists: every setting but the internal ones. */
export function readmeRows(rows: readonly SettingRow[] = settingRows()): ReadmeRow[] {
  return rows.filter((r) => !r.internal).map((r) => ({
    name: r.name,
    default: r.default,
    doc: r.doc,
  }));
}

/** A markdown table, padded the way `deno fmt` pads one. */
export function renderTable(rows: readonly ReadmeRow[]): string {
  const cells = [
    ["setting", "default", "meaning"],
    ...rows.map((r) => [`\`${r.name}\``, r.default, r.doc]),
  ];
  const widths = [0, 1, 2].map((i) => Math.max(3, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => `| ${c.map((cell, i) => cell.padEnd(widths[i]!)).join(" | ")} |`;
  return [
    line(cells[0]!),
    `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`,
    ...cells.slice(1).map(line),
  ].join("\n");
}

/** The section between the markers, or undefined when README has none. */
export function tableSection(readme: string): { start: number; end: number } | undefined {
  const start = readme.indexOf(tableBegin);
  const end = readme.indexOf(tableEnd);
  if (start < 0 || end < start) return undefined;
  return { start: start + tableBegin.length, end };
}

/** README with its settings table replaced by `table`. */
export function withTable(readme: string, table: string): string {
  const section = tableSection(readme);
  if (!section) throw new Error(`README.md has no ${tableBegin} … ${tableEnd} section`);
  return `${readme.slice(0, section.start)}\n\n${table}\n\n${readme.slice(section.end)}`;
}

/** The rows of README's settings table (cells trimmed, the name's backticks dropped). */
export function parseReadmeTable(readme: string): ReadmeRow[] {
  const section = tableSection(readme);
  if (!section) return [];
  return readme.slice(section.start, section.end).split("\n")
    .filter((l) => l.startsWith("|"))
    .slice(2)
    .map((l) => {
      const [name = "", def = "", doc = ""] = l.slice(1, -1).split("|").map((c) => c.trim());
      return { name: name.replaceAll("`", ""), default: def, doc };
    });
}
