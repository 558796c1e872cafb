/**
 * EFFECT: gather settings from the environment and, when enabled, the metadata service.
 * Metadata wins over the environment for the same key.
 */
import { readMmds } from "./mmds.ts";
import { type ParseContext, parseSettings, type Settings } from "./settings.ts";

export interface LoadOptions {
  major: number;
  env?: Record<string, string>;
  /** Where to read metadata from, or undefined for none (the default off PID 1). */
  mmdsUrl?: string | undefined;
  mmdsDeadlineMs?: number;
}

/** The metadata URL to use: explicit BEYOND_MMDS_URL, or the link-local MMDS inside our own VM. */
export function resolveMmdsUrl(env: Record<string, string>, inOwnVm: boolean): string | undefined {
  const explicit = env["BEYOND_MMDS_URL"];
  if (explicit === "off" || explicit === "false") return undefined;
  if (explicit) return explicit;
  return inOwnVm ? "http://169.254.169.254" : undefined;
}

export async function loadRawSettings(options: LoadOptions): Promise<Record<string, string>> {
  const env = options.env ?? Deno.env.toObject();
  if (options.mmdsUrl === undefined) return { ...env };
  const metadata = await readMmds(options.mmdsUrl, {
    deadlineMs: options.mmdsDeadlineMs ?? 60_000,
  });
  return { ...env, ...metadata };
}

/** What parseSettings reads files through: this process's file system. */
export function fileSystemContext(major: number): ParseContext {
  return {
    major,
    readFile: (path) => Deno.readTextFileSync(path),
    hostname: () => Deno.hostname(),
    stat: (path) => {
      try {
        return Deno.statSync(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return undefined;
        throw error;
      }
    },
  };
}

export async function loadSettings(options: LoadOptions): Promise<Settings> {
  const raw = await loadRawSettings(options);
  return parseSettings(raw, fileSystemContext(options.major));
}
