/**
 * `deno task dev`: the supervisor on a git-ignored data directory in the repository, with a
 * password generated once and kept in .dev/password (unless POSTGRES_PASSWORD is given).
 * Prints both DSNs when the database is ready. In a test lane (scripts/lane.sh run pg18 -- …)
 * the data lives in .dev/<lane>/ instead, so the host's major and the lane's never share one.
 */
import { runSupervisor } from "../src/cli/supervisor.ts";

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const lane = Deno.env.get("BEYOND_TEST_LANE");
const dev = lane ? `${repo}/.dev/${lane}` : `${repo}/.dev`;
const shown = lane ? `.dev/${lane}` : ".dev";
Deno.mkdirSync(dev, { recursive: true, mode: 0o755 });

const defaults: Record<string, string> = {
  BEYOND_PG_DATA_ROOT: `${dev}/data`,
  BEYOND_PG_RUN_DIR: `${dev}/run`,
  BEYOND_PG_SOCKET_DIR: `${dev}/sockets`,
  BEYOND_PG_HOOKS_DIR: `${dev}/hooks`,
  BEYOND_PG_SEED_DIR: `${dev}/seed`,
  BEYOND_PG_LISTEN_ADDR: "127.0.0.1",
  BEYOND_MMDS_URL: "off",
};
for (const [k, v] of Object.entries(defaults)) if (!Deno.env.get(k)) Deno.env.set(k, v);

if (!Deno.env.get("POSTGRES_PASSWORD") && !Deno.env.get("POSTGRES_PASSWORD_FILE")) {
  const file = `${dev}/password`;
  try {
    Deno.statSync(file);
  } catch {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    const pw = btoa(String.fromCharCode(...bytes)).replace(/[+/=]/g, "x");
    Deno.writeTextFileSync(file, pw + "\n", { mode: 0o600 });
  }
  Deno.env.set("POSTGRES_PASSWORD_FILE", file);
}

const password = Deno.env.get("POSTGRES_PASSWORD") ??
  Deno.readTextFileSync(Deno.env.get("POSTGRES_PASSWORD_FILE")!).replace(/\r?\n$/, "");
const port = Deno.env.get("BEYOND_PG_PORT") ?? "5432";
const direct = Deno.env.get("BEYOND_PG_DIRECT_PORT") ?? "5433";
const db = Deno.env.get("POSTGRES_DATABASE") ?? "postgres";
const pw = encodeURIComponent(password);

Deno.exit(
  await runSupervisor({
    onReady: () => {
      console.log(
        [
          "",
          "beyond-pg dev database is ready:",
          `  apps (PgBouncer, transaction pooling): postgres://postgres:${pw}@localhost:${port}/${db}`,
          `  direct (migrations, LISTEN/NOTIFY):    postgres://postgres:${pw}@localhost:${direct}/${db}`,
          `  password: ${password}   (kept in ${shown}/password; set POSTGRES_PASSWORD to choose one)`,
          `  psql "postgres://postgres:${pw}@localhost:${port}/${db}"`,
          `Ctrl-C stops it cleanly; data stays in ${shown}/data.`,
          "",
        ].join("\n"),
      );
    },
  }),
);
