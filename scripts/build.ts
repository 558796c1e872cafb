/**
 * `deno task build` → dist/beyond-pg, the one program the image installs as /sbin/init.
 *
 * Where a `denort` runtime is available (DENORT_BIN, or a network that reaches dl.deno.land)
 * this is `deno compile` with exactly the permissions beyond-pg uses. Otherwise it is a bundle
 * (dist/js/main.js and its chunks, every dependency inlined) beside the Deno runtime (dist/deno)
 * and a small launcher (dist/beyond-pg) that runs it with the same permissions and flags: same
 * behaviour, same entry point, tested by tests/build_test.ts.
 *
 * The bundle is split at main.ts's lazy imports: a subcommand loads only its own code. Side by
 * side (bench/startup.ts, 20 runs each), `beyond-pg archive` — run once per WAL segment — took
 * 67.6 ms instead of 79.1 ms as one 757 KB file; the wake did not change beyond noise.
 *
 * Usage: deno task build [--bundle-only] [--out DIR]
 */

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const args = Deno.args;
const outIdx = args.indexOf("--out");
const out = outIdx >= 0 ? args[outIdx + 1]! : `${repo}/dist`;
const bundleOnly = args.includes("--bundle-only") || Deno.env.get("BEYOND_PG_BUILD") === "bundle";

/**
 * What the program needs: files, processes, network (S3, metadata, loopback), env, FFI, sys —
 * and /proc and /sys (mounts, readiness, reaping, resources), which Deno only lets a process
 * read with all permissions granted. So the binary is granted all, and each subcommand
 * revokes what it does not use as it starts (src/security/permissions.ts).
 */
export const PERMISSIONS = ["--allow-all"];
/**
 * V8 flags: a small young generation and one GC thread (a lower idle footprint), and no JIT.
 * Without --jitless V8 reserves a ~510 MB read-write-execute code range per process, which
 * the image's strict overcommit (vm.overcommit_memory = 2) charges in full: in a 1 GiB VM
 * a second Deno process (an archive_command, a control call) could not even start.
 * beyond-pg is I/O-bound; its hashing, compression and JSON run natively.
 */
export const V8_FLAGS = "--v8-flags=--max-semi-space-size=1,--single-threaded-gc,--jitless";

async function sh(cmd: string, argv: string[], env: Record<string, string> = {}): Promise<boolean> {
  const p = await new Deno.Command(cmd, { args: argv, env, stdout: "inherit", stderr: "inherit" })
    .output();
  return p.success;
}

Deno.mkdirSync(out, { recursive: true });
for (const name of ["beyond-pg", "beyond-pg.js", "js", "deno", "BUILD"]) {
  await Deno.remove(`${out}/${name}`, { recursive: true }).catch(() => {});
}
const deno = Deno.execPath();
let kind = "bundle";

if (!bundleOnly) {
  const env: Record<string, string> = {};
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) env["DENORT_BIN"] = denort;
  console.error(
    `build: deno compile${denort ? ` (DENORT_BIN=${denort})` : " (downloading denort)"}`,
  );
  const ok = await sh(deno, [
    "compile",
    "--quiet",
    ...PERMISSIONS,
    V8_FLAGS,
    "--no-check",
    "-o",
    `${out}/beyond-pg`,
    `${repo}/main.ts`,
  ], env);
  if (ok) kind = "compiled";
  else {console.error(
      "build: deno compile is not possible here (no denort runtime); building the bundle",
    );}
}

if (kind === "bundle") {
  if (
    !(await sh(deno, [
      "bundle",
      "--quiet",
      "--platform=deno",
      "--code-splitting",
      "--outdir",
      `${out}/js`,
      `${repo}/main.ts`,
    ]))
  ) {
    console.error("build: deno bundle failed");
    Deno.exit(1);
  }
  await Deno.copyFile(deno, `${out}/deno`);
  await Deno.chmod(`${out}/deno`, 0o755);
  const launcher = `#!/bin/sh
# beyond-pg launcher: the bundle on the Deno runtime beside it, with the permissions and flags
# the compiled binary has. It execs, so as /sbin/init it stays PID 1. No subprocesses on the
# common path: postgres runs this once per WAL segment.
case $0 in */*) here=\${0%/*} ;; *) here=. ;; esac
if [ -L "$0" ]; then here=$(dirname "$(readlink -f "$0")"); fi
case $here in /*) ;; *) here=$(cd "$here" && pwd) ;; esac
export BEYOND_PG_SELF="$here/beyond-pg"
export DENO_NO_UPDATE_CHECK=1 DENO_NO_PROMPT=1
# Deno's caches (the bundle's analysis and V8 code cache): the image ships them warm in
# deno-cache/ (packer/scripts/06-beyond-pg-install.sh) — a cold cache costs PID 1 ~8 MB of RSS.
if [ -z "\${DENO_DIR:-}" ]; then
  if [ -d "$here/deno-cache" ] && [ -w "$here/deno-cache" ]; then DENO_DIR=$here/deno-cache
  elif [ -d /run/beyond-pg ] && [ -w /run/beyond-pg ]; then
    DENO_DIR=/run/beyond-pg/deno
    if [ ! -d "$DENO_DIR" ] && [ -d "$here/deno-cache" ]; then cp -R "$here/deno-cache" "$DENO_DIR" 2>/dev/null || :; fi
  else
    uid=; while read -r k v _; do [ "$k" = Uid: ] && uid=$v && break; done </proc/self/status
    DENO_DIR="\${TMPDIR:-/tmp}/beyond-pg-deno-\${uid:-$(id -u)}"
  fi
  export DENO_DIR
fi
exec "$here/deno" run ${
    PERMISSIONS.join(" ")
  } ${V8_FLAGS} --no-config --no-lock --quiet "$here/js/main.js" "$@"
`;
  Deno.writeTextFileSync(`${out}/beyond-pg`, launcher, { mode: 0o755 });
  await Deno.chmod(`${out}/beyond-pg`, 0o755);
}
Deno.writeTextFileSync(`${out}/BUILD`, `${kind}\n`);
console.error(`build: ${out}/beyond-pg (${kind})`);
