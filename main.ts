/**
 * beyond-pg: PID 1 and supervisor for a PostgreSQL microVM. CLI dispatch only:
 * parse → run one subcommand (loaded lazily, so per-segment commands stay cheap) → exit code.
 */
import { VERSION } from "./src/util/version.ts";

type Command = (args: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  supervisor: {
    summary: "boot, then start and supervise postgres + PgBouncer (PID 1 in the VM)",
    load: () => import("./src/cli/supervisor.ts").then((m) => m.main),
  },
  boot: {
    summary: "idempotent boot-time setup only: initdb if empty, config, pre-start hooks",
    load: () => import("./src/cli/boot.ts").then((m) => m.main),
  },
  control: {
    summary:
      "talk to the running supervisor: control <health|status|checkpoint|reload|drain|resume|hot-set|backup|verify> [--json]",
    load: () => import("./src/cli/control.ts").then((m) => m.main),
  },
  "restore-wal": {
    summary: "restore_command: restore-wal %f %p (from the archive target)",
    load: () => import("./src/cli/restore_wal.ts").then((m) => m.main),
  },
  seed: {
    summary: "build the prepared cluster first boot copies (an image build step)",
    load: () => import("./src/cli/seed.ts").then((m) => m.main),
  },
  archive: {
    summary: "archive_command: archive %p %f (no-op without BEYOND_PG_ARCHIVE_TARGET)",
    load: () => import("./src/cli/archive.ts").then((m) => m.main),
  },
  backup: {
    summary:
      "base backup to the archive target: backup [--label L] [--incremental (PostgreSQL 17+)] [--json]",
    load: () => import("./src/cli/backup.ts").then((m) => m.main),
  },
  backups: {
    summary: "backups list [--json] | backups prune (--keep N | --older-than 7d) [--dry-run]",
    load: () => import("./src/cli/backups.ts").then((m) => m.main),
  },
  verify: {
    summary:
      "prove backups restorable (object SHA-256, WAL continuity and content): verify [--backup L] [--json] [--quick] [--restore-test]",
    load: () => import("./src/cli/verify.ts").then((m) => m.main),
  },
  restore: {
    summary:
      "point-in-time restore into an empty data root: restore --to-time T | --to-lsn L | --latest",
    load: () => import("./src/cli/restore.ts").then((m) => m.main),
  },
  "wal-sink": {
    summary: "keep a primary's WAL on another host and serve it to its next boot (Tier 1.5)",
    load: () => import("./src/cli/wal_sink.ts").then((m) => m.main),
  },
  "log-receiver": {
    summary: "listen on vsock and print the supervisor's log frames (a host agent's view)",
    load: () => import("./src/cli/log_receiver.ts").then((m) => m.main),
  },
  permissions: {
    summary: "the Deno permissions each command keeps (--check COMMAND probes them)",
    load: () => import("./src/cli/permissions.ts").then((m) => m.main),
  },
  settings: {
    summary: "every setting: default, meaning, secret or not (--json); never a value",
    load: () => import("./src/cli/settings.ts").then((m) => m.main),
  },
  warm: {
    summary:
      "an image build step: load every command's code once, so Deno's caches ship warm (a bundle build)",
    load: () =>
      Promise.resolve(async () => {
        for (const [name, c] of Object.entries(commands)) if (name !== "warm") await c.load();
        await import("./src/init/platform.ts");
        await import("./src/init/pid1.ts");
        // A split bundle (dist/js/): also the chunks commands import lazily inside themselves
        // (archive's and restore-wal's working code, kept lazy so their cheap paths stay cheap).
        const here = new URL(".", import.meta.url);
        if (here.pathname.endsWith("/js/")) {
          for (const e of Deno.readDirSync(here)) {
            if (e.name.endsWith(".js") && e.name !== "main.js") {
              await import(new URL(e.name, here).href);
            }
          }
        }
        return 0;
      }),
  },
  version: {
    summary: "print the version",
    load: () =>
      Promise.resolve(() => {
        console.log(`beyond-pg ${VERSION} (deno ${Deno.version.deno})`);
        return Promise.resolve(0);
      }),
  },
  help: {
    summary: "this text",
    load: () => Promise.resolve(() => (console.log(usage()), Promise.resolve(0))),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    `beyond-pg ${VERSION} — PostgreSQL microVM supervisor`,
    "",
    "usage: beyond-pg <command> [args]",
    "",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Settings come from the environment (and instance metadata when enabled); run",
    "`beyond-pg settings` for the list.",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  // As /sbin/init the kernel passes no command (and stray cmdline words as arguments).
  if (
    Deno.pid === 1 &&
    (argv.length === 0 || argv[0] === "supervisor" || !Object.hasOwn(commands, argv[0]!))
  ) {
    const { detectPlatform } = await import("./src/init/platform.ts");
    const { initMain } = await import("./src/init/pid1.ts");
    return await initMain(detectPlatform());
  }
  const [name = "help", ...args] = argv;
  const key = name === "--help" || name === "-h" ? "help" : name;
  const command = Object.hasOwn(commands, key) ? commands[key] : undefined;
  if (!command) {
    console.error(`beyond-pg: unknown command ${JSON.stringify(name)}; run \`beyond-pg help\``);
    return 2;
  }
  // Least privilege: drop what this command does not use before its code is loaded. The
  // `permissions --check X` probe narrows further itself, so it starts with its own profile
  // widened to what it probes.
  const { applyProfile } = await import("./src/security/permissions.ts");
  applyProfile(name === "permissions" && args.includes("--check") ? "supervisor" : name);
  try {
    return await (await command.load())(args);
  } catch (error) {
    const { errorMessage } = await import("./src/util/errors.ts");
    const code = (error as { exitCode?: number }).exitCode;
    console.error(`beyond-pg: ${errorMessage(error)}`);
    if (code === undefined && error instanceof Error && error.stack) {
      console.error(error.stack.split("\n").slice(1, 6).join("\n"));
    }
    return code ?? 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
