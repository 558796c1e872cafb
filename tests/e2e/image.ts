/** Build (and cache) the e2e images with scripts/build-image.sh; shared by the e2e tests and bench/vm.ts. */
import { repoRoot } from "../support/paths.ts";
import type { Image } from "../support/vm.ts";

async function sh(cmd: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed:\n${
        new TextDecoder().decode(out.stderr).split("\n").slice(-25).join("\n")
      }`,
    );
  }
}

/**
 * An image of the current build with the e2e hooks. `variant` "v2" changes one value of
 * 00-beyond.conf in the build first (bgwriter_lru_maxpages 1000 → 1001): an image upgrade.
 */
export async function buildImage(variant: "v1" | "v2"): Promise<Image> {
  const out = `${repoRoot}/.cache/e2e-image`;
  await sh(Deno.execPath(), [
    "task",
    "--quiet",
    "build",
    "--bundle-only",
    "--out",
    `${out}/dist-${variant}`,
  ], {
    PATH: Deno.env.get("PATH") ?? "",
  });
  if (variant === "v2") {
    // The settings table sits in one of the bundle's chunks.
    const dir = `${out}/dist-v2/js`;
    let found = false;
    for (const e of Deno.readDirSync(dir)) {
      const js = `${dir}/${e.name}`;
      const text = Deno.readTextFileSync(js);
      const changed = text.replace(
        /name: "bgwriter_lru_maxpages",\s*value: (?:1000|1e3)\b/,
        'name: "bgwriter_lru_maxpages", value: 1001',
      );
      if (changed !== text) {
        Deno.writeTextFileSync(js, changed);
        found = true;
      }
    }
    if (!found) {
      throw new Error("v2: the bgwriter_lru_maxpages entry was not found in the bundle");
    }
  }
  await sh(`${repoRoot}/scripts/build-image.sh`, [out], {
    PATH: Deno.env.get("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    DIST: `${out}/dist-${variant}`,
    TEST_HOOKS: `${repoRoot}/tests/e2e/hooks`,
  });
  const rootfs = `${out}/rootfs-${variant}.ext4`;
  await Deno.rename(`${out}/rootfs.ext4`, rootfs);
  return { rootfs, kernel: `${out}/vmlinuz`, initrd: `${out}/initrd.img` };
}
