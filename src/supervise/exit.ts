/** PURE: how a child exited, in words, and the line of its output that says why. */

export interface ExitStatus {
  code: number;
  signal: Deno.Signal | null;
}

export function describeExit(s: ExitStatus): string {
  return s.signal ? `killed by ${s.signal}` : `exited ${s.code}`;
}

/**
 * A client's own FATAL ("the database system is in recovery mode", a failed login) is a symptom
 * of the server's state, never its cause; our log_line_prefix marks session lines with "db=".
 */
const SESSION_LINE = new RegExp(
  [
    String.raw`\bdb=[^,\s]+,user=`,
    "the database system is (starting up|in recovery mode|shutting down|not yet accepting)",
    "password authentication failed",
    "no pg_hba\\.conf entry",
    "terminating connection",
  ].join("|"),
);

/** The line of a child's output that best says why it stopped, with the prefix trimmed. */
export function lastProblemLine(lines: string[]): string {
  const important = lines.filter((l) => /FATAL|PANIC|ERROR|error|could not|bind/.test(l));
  const cause = important.filter((l) => !SESSION_LINE.test(l));
  return (cause.at(-1) ?? important.at(-1) ?? lines.at(-1) ?? "no output").replace(
    /^.*?(FATAL|PANIC|ERROR):\s*/,
    "$1: ",
  );
}
