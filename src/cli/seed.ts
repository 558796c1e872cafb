/** `beyond-pg seed`: build the seed cluster the image copies on first boot (image build step). */
import { buildSeed } from "../image/seed_build.ts";
import { buildContext } from "../boot/context.ts";
import { log } from "../util/log.ts";
import { Secret } from "../settings/secret.ts";

export async function main(_args: string[]): Promise<number> {
  // The seed's own password is random and replaced at first boot: none is needed here.
  const env = Deno.env.toObject();
  if (!env["POSTGRES_PASSWORD"] && !env["POSTGRES_PASSWORD_FILE"]) {
    env["POSTGRES_PASSWORD"] = new Secret(crypto.randomUUID()).reveal();
  }
  const ctx = await buildContext({ env });
  const t = performance.now();
  const dir = await buildSeed({
    seedDir: ctx.settings.seedDir,
    probe: ctx.probe,
    bins: ctx.bins,
    caps: ctx.caps,
    manifest: ctx.manifest,
    runAs: ctx.runAs,
  });
  log.info(`seed built in ${dir} (${Math.round(performance.now() - t)} ms)`);
  return 0;
}
