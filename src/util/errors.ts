/**
 * Errors meant for operators: one line that names the action, the bad value and the fix.
 * `exitCode` is what the CLI exits with when one escapes a subcommand.
 */
export class OperatorError extends Error {
  readonly exitCode: number;

  constructor(message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = "OperatorError";
    this.exitCode = options.exitCode ?? 1;
  }
}

/** The message of anything thrown, on one line. */
export function errorMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replaceAll("\n", " | ");
}
