/**
 * Read-only file helpers for paths only root can change (system files, /proc, our run dir).
 * Anything in a directory the postgres uid can write goes through src/fs/ instead.
 */

/** Is there anything at `path` (a link counts; it is not followed)? */
export function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** The file's text, or undefined when it does not exist. */
export function readTextIfExists(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
