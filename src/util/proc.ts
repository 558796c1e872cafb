/**
 * The one reader of /proc/<pid>: state, parent and owner of a process. (Field 2 of
 * /proc/<pid>/stat is the command name in parentheses, which may itself hold spaces and
 * parentheses: fields are counted from the last ")".)
 */

export interface ProcStat {
  pid: number;
  /** R, S, D, Z, X, … */
  state: string;
  ppid: number;
  /** The process's effective uid (the owner of /proc/<pid>). */
  uid: number;
}

/**
 * PURE: the fields of /proc/<pid>/stat after the command name: [0] is the state (field 3 of
 * proc(5)), [1] the parent, [11] and [12] user and system time in clock ticks.
 */
export function statFields(text: string): string[] {
  const close = text.lastIndexOf(")");
  return close < 0 ? [] : text.slice(close + 2).split(" ");
}

/** PURE: state and parent from the text of /proc/<pid>/stat. */
export function parseStat(text: string): { state: string; ppid: number } | undefined {
  const fields = statFields(text);
  const ppid = Number(fields[1]);
  if (!fields[0] || !Number.isInteger(ppid)) return undefined;
  return { state: fields[0], ppid };
}

export function readProcStat(pid: number): ProcStat | undefined {
  try {
    const parsed = parseStat(Deno.readTextFileSync(`/proc/${pid}/stat`));
    if (!parsed) return undefined;
    const uid = Deno.statSync(`/proc/${pid}`).uid ?? -1;
    return { pid, ...parsed, uid };
  } catch {
    return undefined;
  }
}

/** Is the process there and not a zombie? */
export function alive(pid: number): boolean {
  const s = readProcStat(pid);
  return s !== undefined && s.state !== "Z" && s.state !== "X";
}

/** The process's argv (empty when it is gone). */
export function cmdline(pid: number): string[] {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").filter(Boolean);
  } catch {
    return [];
  }
}

/** Every pid in /proc. */
export function allPids(): number[] {
  const out: number[] = [];
  for (const e of Deno.readDirSync("/proc")) {
    const pid = Number(e.name);
    if (Number.isInteger(pid)) out.push(pid);
  }
  return out;
}
