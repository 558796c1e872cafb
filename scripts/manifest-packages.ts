/**
 * conf/extensions.toml → the packages an image build installs for one package source.
 *   deno run -A scripts/manifest-packages.ts <source> <major> <apt-out> <github-out>
 * source: "pgdg" (production: PGDG, GitHub releases, ParadeDB) or a Debian suite ("bookworm",
 * "trixie", "testing": local images and the test lanes). "-" means the source does not ship that
 * extension: noted, skipped. An extension with no entry for the source is an error (the manifest
 * must say, for every source, whether it ships it).
 */
import { parseManifest } from "../src/config/manifest.ts";

const [source, major, aptOut, githubOut] = Deno.args;
if (!source || !major || !aptOut || !githubOut) {
  console.error(
    "usage: manifest-packages.ts <pgdg|bookworm|trixie|testing> <major> <apt-out> <github-out>",
  );
  Deno.exit(2);
}
const manifest = parseManifest(
  Deno.readTextFileSync(new URL("../conf/extensions.toml", import.meta.url)),
  "conf/extensions.toml",
);
const apt = new Set<string>();
const github: string[] = [];
const sources = source === "pgdg" ? ["pgdg", "paradedb", "github"] : [source];
for (const ext of manifest.extensions) {
  const found = sources.map((s) => [s, ext.packages[s]] as const).find(([, p]) => p !== undefined);
  if (!found) {
    console.error(`manifest: ${ext.name} has no packages.${source} entry; add one ("-" if none)`);
    Deno.exit(2);
  }
  if (found[1] === "-") {
    console.error(`manifest: ${ext.name}: not shipped by ${source}; the image goes without it`);
    continue;
  }
  const [kind, pkg] = found;
  if (kind === "github") github.push(`${pkg} ${ext.name}`);
  else apt.add(pkg!.replaceAll("{major}", major));
}
Deno.writeTextFileSync(aptOut, [...apt].join("\n") + "\n");
Deno.writeTextFileSync(githubOut, github.join("\n") + (github.length ? "\n" : ""));
console.error(
  `manifest: ${apt.size} apt package(s), ${github.length} GitHub release(s) for ${source}`,
);
