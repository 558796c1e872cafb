/**
 * The attacker of the trust-boundary tests: the app, which holds the postgres superuser
 * password, running shell commands as the postgres OS user through `COPY … TO PROGRAM` from a
 * network SQL session, and the root-only files it would like root to touch for it.
 */
import assert from "node:assert/strict";
import { type Instance, psql } from "./harness.ts";

/**
 * Run `script` (sh) as the postgres OS user through SQL, in PGDATA. Resolves with its exit:
 * COPY fails when the program does.
 */
export async function asPostgres(
  pg: Instance,
  script: string,
): Promise<{ ok: boolean; error: string }> {
  const quoted = `sh -c '${script.replaceAll("'", `'"'"'`)}'`.replaceAll("'", "''");
  try {
    await psql(pg.directPort, `COPY (SELECT 1) TO PROGRAM '${quoted}'`, { password: pg.password });
    return { ok: true, error: "" };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

export interface Victim {
  /** A root-only directory (0700). */
  dir: string;
  /** A root-only file in it (0600, known content). */
  file: string;
  check(): void;
  remove(): void;
}

/** Root-only files a successful attack would change, and a check that none changed. */
export function victim(): Victim {
  const dir = Deno.makeTempDirSync({ prefix: "bpg-victim-" });
  Deno.chmodSync(dir, 0o700);
  const file = `${dir}/secret`;
  const content = `root-only ${crypto.randomUUID()}\n`;
  Deno.writeTextFileSync(file, content, { mode: 0o600 });
  Deno.chmodSync(file, 0o600);
  return {
    dir,
    file,
    check() {
      const d = Deno.statSync(dir);
      assert.equal(d.uid, 0, `${dir} was chowned`);
      assert.equal((d.mode ?? 0) & 0o7777, 0o700, `${dir} was chmodded`);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["secret"], `${dir} changed`);
      const f = Deno.statSync(file);
      assert.equal(f.uid, 0, `${file} was chowned`);
      assert.equal(f.gid, 0, `${file} was chgrped`);
      assert.equal((f.mode ?? 0) & 0o7777, 0o600, `${file} was chmodded`);
      assert.equal(Deno.readTextFileSync(file), content, `${file} was written`);
    },
    remove() {
      Deno.removeSync(dir, { recursive: true });
    },
  };
}
