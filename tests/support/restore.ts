/** Restores for the PITR and restore-truth tests: as a served instance, or once to its end. */
import { exists } from "../../src/util/fs.ts";
import { freshBucket, s3Env } from "./s3.ts";
import {
  beyondPgCommand,
  freePort,
  type Instance,
  instanceEnv,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./harness.ts";

export { freshBucket, s3Env };

export const READY = /\[beyond-pg\] ready:/;
export const PROMOTED = /restored and promoted: timeline (\d+)/;

/** `beyond-pg restore ...` on a new data root; resolves once it has promoted (--serve). */
export async function restoreServed(
  bucket: string,
  password: string,
  args: string[],
): Promise<Instance> {
  const pg = await startSupervisor({
    args: ["restore", ...args, "--serve"],
    env: s3Env(bucket),
    password,
  });
  await pg.waitFor(PROMOTED, 120_000);
  await pg.waitFor(READY, 30_000);
  return pg;
}

/** `beyond-pg restore ...` to its end; what it said, and what it left in the data root. */
export async function restoreOnce(
  bucket: string,
  password: string,
  args: string[],
  extraEnv: Record<string, string> = {},
) {
  const root = await tempRoot();
  const env = instanceEnv(root, {
    port: freePort(),
    directPort: freePort(),
    httpPort: freePort(),
    password,
  });
  const c = beyondPgCommand(["restore", ...args]);
  const out = await new Deno.Command(c.cmd, {
    args: c.args,
    env: { ...env, ...s3Env(bucket), ...extraEnv },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  // A restore that stops before taking the data root never creates it: nothing left there.
  const entries = exists(`${root}/data`)
    ? [...Deno.readDirSync(`${root}/data`)].map((e) => e.name).filter((n) =>
      n !== ".beyond-pg.lock"
    )
    : [];
  await removeRoot(root);
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    entries,
  };
}

/** Rows of the marker table (0 when it does not exist). */
export async function markers(pg: Instance): Promise<number> {
  return Number(
    await psql(pg.directPort, "select count(*) from markers", { password: pg.password }),
  );
}
