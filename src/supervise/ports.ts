/**
 * EFFECT: is a TCP port free to listen on? Checked once at start, after processes an earlier
 * supervisor left behind were stopped, so that a port held by something else is one line
 * naming the port and the setting — not a restart loop or a stack trace.
 */
import { OperatorError } from "../util/errors.ts";

/** Hosts a listen address list stands for (`*` is every address). */
function hostsOf(addr: string): string[] {
  return addr === "*" ? ["0.0.0.0"] : addr.split(",").map((a) => a.trim()).filter(Boolean);
}

/** Throws an OperatorError when something already listens on `addr`:`port`. */
export function requirePortFree(addr: string, port: number, setting: string): void {
  for (const hostname of hostsOf(addr)) {
    let listener: Deno.Listener | undefined;
    try {
      listener = Deno.listen({ hostname, port });
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse) {
        throw new OperatorError(
          `Cannot start: ${hostname}:${port} is already in use (${setting}); stop what listens there or set ${setting} to a free port`,
          { exitCode: 2, cause: error },
        );
      }
      // Not ours to judge (an address not on this host yet, say): the server will tell.
    } finally {
      listener?.close();
    }
  }
}
