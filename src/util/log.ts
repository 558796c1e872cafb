/**
 * One-line operator logging. Every line the supervisor itself prints starts with
 * `[beyond-pg]`; child output is prefixed by its own name elsewhere.
 */

export type Level = "debug" | "info" | "warn" | "error";

const levelRank: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Where log lines go; swapped in tests and by the log forwarder. */
export type LineWriter = (line: string) => void;

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // A closed stderr must never take the supervisor down.
  }
}

let writer: LineWriter = writeStderr;
// Read when this module loads: after a command's permission profile is applied (the bundle is
// split per command), so a command that keeps no env access logs at "info".
let minLevel: Level = (() => {
  try {
    return Deno.env.get("BEYOND_PG_LOG_LEVEL") as Level | undefined;
  } catch {
    return undefined;
  }
})() ?? "info";
if (!(minLevel in levelRank)) minLevel = "info";

/** Replace the sink for supervisor log lines (returns the previous one). */
export function setLogWriter(next: LineWriter): LineWriter {
  const previous = writer;
  writer = next;
  return previous;
}

export function setLogLevel(level: Level): void {
  minLevel = level;
}

function emit(level: Level, message: string): void {
  if (levelRank[level] < levelRank[minLevel]) return;
  const tag = level === "info" ? "" : `${level === "warn" ? "warning" : level}: `;
  // Keep every record on one line, whatever the message holds.
  writer(`[beyond-pg] ${tag}${message.replaceAll("\n", " | ")}`);
}

export const log = {
  debug: (message: string) => emit("debug", message),
  info: (message: string) => emit("info", message),
  warn: (message: string) => emit("warn", message),
  error: (message: string) => emit("error", message),
};
