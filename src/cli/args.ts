/** PURE: `--name value` / `--flag` parsing for the subcommands; unknown options are errors. */
export interface Parsed {
  values: Map<string, string>;
  flags: Set<string>;
  positional: string[];
}

export function parseArgs(
  args: string[],
  spec: { values?: string[]; flags?: string[] },
): Parsed | string {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (spec.flags?.includes(name) && inline === undefined) {
      flags.add(name);
    } else if (spec.values?.includes(name)) {
      const v = inline ?? args[++i];
      if (v === undefined) return `--${name} needs a value`;
      values.set(name, v);
    } else {
      return `unknown option --${name}`;
    }
  }
  return { values, flags, positional };
}
