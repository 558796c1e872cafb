/**
 * The one way to make a Deno.Command (a source test fails on any other): the child gets an
 * allow-listed environment, never ours (the password, the S3 keys and whatever else a platform
 * put in our environment must not reach postgres, PgBouncer, tools or hooks).
 */
import { childEnv } from "./env.ts";

export type CommandOptions = Omit<Deno.CommandOptions, "env" | "clearEnv"> & {
  /** Added to the allow-listed environment (process/env.ts). */
  env?: Record<string, string>;
};

export function command(cmd: string | URL, o: CommandOptions = {}): Deno.Command {
  return new Deno.Command(cmd, { ...o, env: childEnv(o.env), clearEnv: true });
}
