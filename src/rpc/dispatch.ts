/**
 * The control commands, by name. The set grows without touching the frame format: a new
 * command is one more entry here. Each runs with a timeout; any failure becomes a structured
 * error, never an exception.
 */
import { errorMessage } from "../util/errors.ts";
import { type ErrorCode, errorResponse, okResponse, type Request, type Response } from "./codec.ts";

export class CommandError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export interface CommandSpec {
  summary: string;
  timeoutMs: number;
  run(args: Record<string, unknown>): Promise<unknown> | unknown;
}

export function makeDispatch(commands: Record<string, CommandSpec>) {
  return async (req: Request): Promise<Response> => {
    const spec = Object.hasOwn(commands, req.cmd) ? commands[req.cmd] : undefined;
    if (!spec) {
      return errorResponse(
        req.id,
        "unknown_command",
        `unknown command ${JSON.stringify(req.cmd)}; known: ${
          Object.keys(commands).sort().join(", ")
        }`,
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => spec.run(req.args)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new CommandError(
                  "timeout",
                  `${req.cmd} did not finish within ${spec.timeoutMs} ms`,
                ),
              ),
            spec.timeoutMs,
          );
        }),
      ]);
      return okResponse(req.id, result ?? null);
    } catch (error) {
      const code = error instanceof CommandError ? error.code : "failed";
      return errorResponse(req.id, code, errorMessage(error));
    } finally {
      clearTimeout(timer);
    }
  };
}
