/**
 * `beyond-pg settings [--json]`: every setting from the settings table — its default, what it
 * does, the other names it answers to, whether it is a secret. Never a value: it reads no
 * environment and no metadata.
 */
import { groupTitles } from "../settings/setting.ts";
import { type SettingRow, settingRows } from "../settings/table.ts";

/** Markdown code spans read as plain text on a terminal. */
function plain(text: string): string {
  return text.replaceAll("`", "");
}

export function renderSettings(rows: readonly SettingRow[]): string {
  const out: string[] = [];
  for (const [group, title] of Object.entries(groupTitles)) {
    const inGroup = rows.filter((r) => r.group === group);
    if (inGroup.length === 0) continue;
    out.push("", title);
    for (const row of inGroup) {
      const marks = [...(row.secret ? ["secret"] : []), ...(row.internal ? ["internal"] : [])];
      const mark = marks.length ? ` [${marks.join(", ")}]` : "";
      out.push(
        `  ${row.name}${mark}  (default: ${row.default === "—" ? "none" : plain(row.default)})`,
      );
      out.push(`      ${plain(row.doc)}`);
    }
  }
  out.push(
    "",
    "Set them in the environment or in instance metadata (metadata wins). A bad value stops",
    "the start with one line naming the setting, the value and the fix.",
  );
  return out.slice(1).join("\n");
}

/** The rows as data: plain text, and null where there is no default. */
export function settingsJson(rows: readonly SettingRow[]): string {
  return JSON.stringify(
    rows.map((r) => ({
      ...r,
      default: r.default === "—" ? null : plain(r.default),
      doc: plain(r.doc),
    })),
    null,
    2,
  );
}

export function main(args: string[]): Promise<number> {
  const unknown = args.filter((a) => a !== "--json");
  if (unknown.length) {
    console.error(
      `beyond-pg settings: unknown argument ${JSON.stringify(unknown[0])}; use: settings [--json]`,
    );
    return Promise.resolve(2);
  }
  const rows = settingRows();
  console.log(args.includes("--json") ? settingsJson(rows) : renderSettings(rows));
  return Promise.resolve(0);
}
