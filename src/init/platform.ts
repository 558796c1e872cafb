/**
 * Where we run: PID 1 or not, inside a container or our own VM. PID-1-in-a-VM defaults
 * (metadata service, vsock) switch on only for "our own VM": PID 1 with no container markers.
 * BEYOND_PG_PLATFORM=vm|container|process overrides detection (tests, unusual setups).
 */
import { exists } from "../util/fs.ts";

export interface Platform {
  pid1: boolean;
  container: boolean;
  /** PID 1 inside a VM we booted: talk to MMDS and vsock by default. */
  inOwnVm: boolean;
}

export function detectPlatform(env: Record<string, string> = Deno.env.toObject()): Platform {
  const pid1 = Deno.pid === 1;
  const forced = env["BEYOND_PG_PLATFORM"];
  if (forced === "vm") return { pid1, container: false, inOwnVm: true };
  if (forced === "container") return { pid1, container: true, inOwnVm: false };
  if (forced === "process") return { pid1, container: false, inOwnVm: false };
  const container = exists("/.dockerenv") || exists("/run/.containerenv") ||
    env["container"] !== undefined;
  return { pid1, container, inOwnVm: pid1 && !container };
}
