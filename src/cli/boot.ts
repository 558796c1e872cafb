/** `beyond-pg boot`: the idempotent boot-time setup alone (initdb if needed, config, hooks). */
import { boot } from "../boot/boot.ts";
import { lockDataRoot } from "../boot/lock.ts";
import { makeTrees } from "../boot/trees.ts";
import { buildContext } from "../boot/context.ts";
import { log } from "../util/log.ts";

export async function main(_args: string[]): Promise<number> {
  const ctx = await buildContext();
  makeTrees(ctx.trees);
  const lock = await lockDataRoot(ctx.trees.data, ctx.layout.lockFile);
  try {
    const result = await boot(ctx);
    log.info(
      `boot done: ${
        result.firstBoot ? "initialized" : "existing"
      } cluster in ${ctx.layout.pgdata}; ${result.changed.length} file(s) written; initdb_ms=${result.initdbMs} config_ms=${result.configMs} hooks_ms=${result.hooksMs}`,
    );
    return 0;
  } finally {
    lock.close();
  }
}
