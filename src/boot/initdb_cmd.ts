/** EFFECT: one initdb run with the image's flags (shared by first boot and the seed build). */
import { buildVerifier } from "../auth/scram.ts";
import type { Secret } from "../settings/secret.ts";
import { run } from "../process/spawner.ts";
import type { Binaries } from "./binaries.ts";
import type { PgTree } from "../fs/tree.ts";
import type { RunAs } from "./users.ts";

/** Locale for initdb: the spec's en_US.UTF-8 when this system has it, else C.UTF-8. */
export async function pickLocale(): Promise<string> {
  try {
    const out = (await run("locale", ["-a"], { check: false })).stdout.split("\n").map((l) =>
      l.trim()
    );
    if (out.some((l) => /^en_US\.utf-?8$/i.test(l))) return "en_US.UTF-8";
    if (out.some((l) => /^C\.utf-?8$/i.test(l))) return "C.UTF-8";
  } catch { /* no locale(1): fall through */ }
  return "C";
}

/**
 * initdb into `dir`. The password reaches initdb as a SCRAM verifier in a 0600 file beside
 * `dir`, removed at once: the plaintext never touches the disk or a command line.
 */
export async function runInitdb(
  dir: string,
  o: { bins: Binaries; runAs: RunAs; password: Secret; pwfile: string; tree: PgTree },
): Promise<void> {
  const owner = o.runAs.switchTo;
  o.tree.writeAtomic(o.pwfile, await buildVerifier(o.password.reveal()) + "\n", 0o600);
  try {
    await run(`${o.bins.binDir}/initdb`, [
      "-D",
      dir,
      "--username=postgres",
      "--auth=scram-sha-256",
      `--pwfile=${o.pwfile}`,
      "--encoding=UTF8",
      `--locale=${await pickLocale()}`,
      "--data-checksums",
      "--no-instructions",
    ], { ...owner, timeoutMs: 300_000 });
  } finally {
    o.tree.remove(o.pwfile, false);
  }
}
