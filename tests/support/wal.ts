/** Waiting for WAL archiving, for the tests that archive to S3. */
import { type Instance, psql } from "./harness.ts";

/**
 * Switch to a new segment, then wait until postgres has archived every file it marked ready
 * (none left in archive_status) and its archiver reports at least the switched file and
 * `atLeast`. Returns the last archived name. On a timeout the error carries the supervisor's
 * output, the process tree, the archiver's view and both status directories.
 */
export async function waitDrained(pg: Instance, ms: number, atLeast = ""): Promise<string> {
  const o = { password: pg.password };
  // The file the switch completed (pg_switch_wal's own LSN: the current write position can
  // already be inside the next, unfinished file when another process wrote a record meanwhile).
  // A record first, so the switch always completes a file: with nothing written since the last
  // switch, pg_switch_wal does nothing, and PG 18 then names the file still in use.
  const switched = await psql(
    pg.directPort,
    "select pg_walfile_name(pg_switch_wal()) from pg_logical_emit_message(false, 'beyond-test', 'drain')",
    o,
  );
  const want = switched > atLeast ? switched : atLeast;
  const statusDir = `${pg.pgdata}/pg_wal/archive_status`;
  const doneDir = `${pg.root}/run/archive/done`;
  const readyFiles = () =>
    [...Deno.readDirSync(statusDir)].filter((e) => e.name.endsWith(".ready")).map((e) => e.name);
  const deadline = Date.now() + ms;
  for (;;) {
    const last = await psql(
      pg.directPort,
      "select coalesce(last_archived_wal, '') from pg_stat_archiver",
      o,
    );
    const waiting = readyFiles();
    if (!waiting.length && last >= want) return last;
    if (Date.now() > deadline) {
      const tail = pg.lines.filter((l) => !/ LOG: {2}(connection|disconnection)/.test(l)).slice(
        -40,
      );
      const ps = new TextDecoder().decode(
        (await new Deno.Command("ps", {
          args: ["-eo", "pid,ppid,etimes,stat,wchan:20,args", "--forest"],
          stdout: "piped",
        }).output()).stdout,
      ).split("\n").filter((l) => /archiv|zstd|deno|postgres: /.test(l));
      const stats = await psql(
        pg.directPort,
        "select a::text || ' ' || coalesce((select wait_event from pg_stat_activity where backend_type = 'archiver'), '-') || ' ' || pg_current_wal_lsn() from pg_stat_archiver a",
        o,
      ).catch((e) => String(e));
      const dirs = [statusDir, doneDir].map((d) => {
        try {
          return `${d}: ${[...Deno.readDirSync(d)].map((e) => e.name).sort().join(" ")}`;
        } catch (e) {
          return `${d}: ${e}`;
        }
      });
      throw new Error(
        `not drained: ${waiting.join(" ") || "nothing ready"}, archiver at ${
          last || "-"
        }, want ${want}; output:\n${tail.join("\n")}\nps:\n${ps.join("\n")}\n${stats}\n${
          dirs.join("\n")
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
