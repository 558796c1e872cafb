/**
 * PURE: a BEYOND_* or POSTGRES_* name close to a known setting is most likely a typo of it
 * (PROT for PORT); say so once, naming the setting meant. Names far from every setting are
 * someone else's (the image build's DIST and CONF variables, the official postgres image's
 * USER and DB) and are left alone. (Example names are spelt out only in the tests: the
 * settings table's source scan reads every full name in src/.)
 */
import { knownNames } from "./table.ts";

/** Levenshtein distance, stopping early once it exceeds `max`. */
export function editDistance(a: string, b: string, max = Infinity): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + cost);
    }
    if (Math.min(...row) > max) return max + 1;
    previous = row;
  }
  return previous[b.length]!;
}

/** One warning line per unknown name within `maxEdits` of a known setting. */
export function typoWarnings(raw: Record<string, unknown>, maxEdits = 2): string[] {
  const known = knownNames();
  const out: string[] = [];
  for (const name of Object.keys(raw).sort()) {
    if (!/^(BEYOND|POSTGRES)_/.test(name) || known.has(name)) continue;
    let best: { name: string; d: number } | undefined;
    for (const k of known) {
      const d = editDistance(name, k, maxEdits);
      if (d <= maxEdits && (!best || d < best.d)) best = { name: k, d };
    }
    if (best) {
      out.push(`setting ${name} is unknown and ignored; did you mean ${best.name}?`);
    }
  }
  return out;
}
