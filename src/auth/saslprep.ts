/**
 * SASLprep (RFC 4013) as PostgreSQL applies it to SCRAM passwords (src/common/saslprep.c):
 * map non-ASCII spaces to U+0020 and "commonly mapped to nothing" characters away, NFKC,
 * then refuse prohibited or unassigned (Unicode 3.2) code points and bad bidi strings.
 * A refused password is used as its raw bytes, which is what postgres and libpq do; so
 * `saslprep()` returns `undefined` and the caller keeps the input.
 */
import { L, NOTHING, PROHIBITED, RANDAL, SPACE } from "./saslprep_tables.ts";

type Ranges = Uint32Array; // flat [start0, end0, start1, end1, ...], sorted

function decode(text: string): Ranges {
  const parts = text.split(",");
  const out = new Uint32Array(parts.length * 2);
  parts.forEach((part, i) => {
    const [a, b] = part.split("-");
    out[i * 2] = parseInt(a!, 16);
    out[i * 2 + 1] = parseInt(b ?? a!, 16);
  });
  return out;
}

function has(ranges: Ranges, cp: number): boolean {
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < ranges[mid * 2]!) hi = mid - 1;
    else if (cp > ranges[mid * 2 + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

let tables: Record<"space" | "nothing" | "prohibited" | "randal" | "l", Ranges> | undefined;

export function saslprep(input: string): string | undefined {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(input)) return input; // postgres passes pure ASCII through as is
  if (/\p{Cs}/u.test(input)) return undefined; // a lone surrogate is not valid UTF-8
  tables ??= {
    space: decode(SPACE),
    nothing: decode(NOTHING),
    prohibited: decode(PROHIBITED),
    randal: decode(RANDAL),
    l: decode(L),
  };
  const t = tables;
  let mapped = "";
  for (const ch of input) {
    const cp = ch.codePointAt(0)!;
    // U+200B is in both tables; like postgres, the space mapping wins.
    if (has(t.space, cp)) mapped += " ";
    else if (!has(t.nothing, cp)) mapped += ch;
  }
  const normalized = mapped.normalize("NFKC");
  if (normalized === "") return undefined;
  const cps = Array.from(normalized, (ch) => ch.codePointAt(0)!);
  if (cps.some((cp) => has(t.prohibited, cp))) return undefined;
  if (cps.some((cp) => has(t.randal, cp))) {
    if (cps.some((cp) => has(t.l, cp))) return undefined;
    if (!has(t.randal, cps[0]!) || !has(t.randal, cps[cps.length - 1]!)) return undefined;
  }
  return normalized;
}
