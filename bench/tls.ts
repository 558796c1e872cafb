/**
 * Issue 6 benchmark (report only): TLS handshake + first query through 5432 (and 5433) vs
 * plaintext, side by side in one run — psql with sslmode=require vs sslmode=disable.
 */
import { cleanup, psql, startSupervisor } from "../tests/support/harness.ts";
import { report, runsFromArgs, sh } from "./lib.ts";

const runs = runsFromArgs(5);
const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
await sh(Deno.execPath(), ["task", "--quiet", "build"], {
  env: { PATH: Deno.env.get("PATH") ?? "" },
});
Deno.env.set("BEYOND_PG_TEST_BIN", `${repo}/dist/beyond-pg`);

const pg = await startSupervisor({ keepLines: /^\[beyond-pg\]/ });
try {
  await pg.waitFor(/\[beyond-pg\] ready:/);
  console.log(
    `# TLS benchmark (${runs * 10} connections each, alternating; self-signed ECDSA P-256)`,
  );
  for (
    const [name, port] of [["5432 (PgBouncer)", pg.port], ["5433 (direct)", pg.directPort]] as const
  ) {
    const tls: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i < runs * 10; i++) {
      let t = performance.now();
      await psql(port, "select 1", { password: pg.password, env: { PGSSLMODE: "require" } });
      tls.push(performance.now() - t);
      t = performance.now();
      await psql(port, "select 1", { password: pg.password, env: { PGSSLMODE: "disable" } });
      plain.push(performance.now() - t);
    }
    report({
      name: `connect + TLS handshake + first query via ${name} vs plaintext`,
      ours: tls,
      base: plain,
    });
  }
} finally {
  await cleanup(pg);
}
