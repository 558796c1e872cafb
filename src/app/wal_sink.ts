/**
 * `beyond-pg wal-sink`, composed: a directory of WAL, pg_receivewal keeping it current (one
 * child loop), the HTTP(S) API that serves it to the primary's boot, retention, status and
 * metrics. One stop latch ends it; pg_receivewal is stopped first, then the server.
 */
import { installPassfile, passfilePath } from "../boot/replication.ts";
import { findBinDir } from "../boot/binaries.ts";
import { replicationCommand } from "../boot/upstream.ts";
import { REPLICATION_ROLE, upstreamConninfo } from "../config/replication_conf.ts";
import { RootTree } from "../fs/tree.ts";
import { serveHttp } from "../http/server.ts";
import { counter, gauge, renderFamilies } from "../metrics/prom.ts";
import type { SinkSettings } from "../settings/settings.ts";
import { Flusher, levelWarningFor } from "../sink/flusher.ts";
import { findNoSyncPreload, Receiver } from "../sink/receiver.ts";
import { sinkRoutes } from "../sink/server.ts";
import { SinkStore } from "../sink/store.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { parseLsn } from "../wal/names.ts";
import type { StopLatch } from "./latch.ts";

export async function runSink(s: SinkSettings, latch: StopLatch): Promise<number> {
  const binDir = findBinDir(s.binDir);
  if (!binDir) {
    throw new OperatorError(
      "Cannot start: no PostgreSQL client tools found (pg_receivewal); install them or set BEYOND_PG_BIN_DIR",
      { exitCode: 2 },
    );
  }
  const parent = s.dir.slice(0, s.dir.lastIndexOf("/")) || "/";
  const tree = RootTree.check(parent, "BEYOND_PG_SINK_DIR");
  tree.ensureDir(s.dir, 0o700, { keepMode: true });
  const runTree = RootTree.check(s.runDir, "BEYOND_PG_RUN_DIR");
  runTree.create(0o755);
  installPassfile({ run: runTree }, { runDir: s.runDir }, {
    user: REPLICATION_ROLE,
    password: s.password.reveal(),
    owner: undefined,
  });
  let tls: { cert: string; key: string } | undefined;
  if (s.tlsDir) {
    try {
      tls = {
        cert: Deno.readTextFileSync(`${s.tlsDir}/cert.pem`),
        key: Deno.readTextFileSync(`${s.tlsDir}/key.pem`),
      };
    } catch (error) {
      throw new OperatorError(
        `Cannot start: BEYOND_PG_SINK_TLS_DIR=${s.tlsDir} has no readable cert.pem and key.pem (${
          errorMessage(error)
        }); put them there or unset it for plain HTTP`,
        { exitCode: 2 },
      );
    }
  }

  const preload = s.ack === "write" ? findNoSyncPreload() : undefined;
  if (s.ack === "write" && !preload) {
    throw new OperatorError(
      "Cannot start: BEYOND_PG_SINK_ACK=write needs libeatmydata (Debian: apt-get install libeatmydata1), since pg_receivewal cannot report a write before its fsync on its own; install it or use BEYOND_PG_SINK_ACK=flush",
      { exitCode: 2 },
    );
  }
  const store = new SinkStore(tree, s.dir, s.name);
  const receiver = new Receiver({
    bin: `${binDir}/pg_receivewal`,
    dir: s.dir,
    name: s.name,
    primary: s.primary,
    passfile: passfilePath({ runDir: s.runDir }),
    noSyncPreload: preload,
    beforeStart: () => void store.dropTornPartials(),
  }, latch.signal);
  const started = Date.now();
  let primaryLsn: bigint | undefined;
  let lastEnd: bigint | undefined;
  const flusher = preload ? new Flusher(tree, s.dir, store, () => lastEnd) : undefined;
  /** With ack=write: the primary's synchronous_commit is `on` (this sink answers too early). */
  let levelWarning: string | undefined;
  const end = () => {
    try {
      const e = store.listing().end;
      lastEnd = e ? parseLsn(e) : undefined;
    } catch (error) {
      log.debug(`wal-sink listing: ${errorMessage(error)}`);
    }
    return lastEnd;
  };
  const flushedEnd = () => (flusher ? flusher.flushed : lastEnd);
  const status = () => {
    const e = lastEnd;
    const f = flushedEnd();
    const reason = receiver.state.lastError ?? levelWarning;
    return {
      name: s.name,
      primary: `${s.primary.host}:${s.primary.port}`,
      state: receiver.state.up ? "streaming" : "connecting",
      ...(reason ? { reason } : {}),
      ack: s.ack,
      diskFull: receiver.state.diskFull,
      receivedLsn: e === undefined ? null : lsnText(e),
      flushLsn: f === undefined ? null : lsnText(f),
      lagBytes: primaryLsn !== undefined && e !== undefined ? Number(primaryLsn - e) : null,
      reconnects: receiver.state.reconnects,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
    };
  };
  const server = serveHttp(
    s.http,
    {
      live: () => true,
      ready: () =>
        Promise.resolve(
          receiver.state.up
            ? { ready: true, reason: "pg_receivewal streams" }
            : { ready: false, reason: receiver.state.lastError ?? "connecting to the primary" },
        ),
      metrics: () => {
        end();
        const st = status();
        return Promise.resolve(renderFamilies([
          gauge(
            "beyond_pg_sink_up",
            "1 while pg_receivewal streams from the primary.",
            st.state === "streaming" ? 1 : 0,
          ),
          gauge(
            "beyond_pg_sink_received_lsn_bytes",
            "Where the WAL this sink holds ends (LSN as a number).",
            lastEnd === undefined ? 0 : Number(lastEnd),
          ),
          gauge(
            "beyond_pg_sink_flush_lsn_bytes",
            "Where the WAL this sink has flushed ends (at least: with BEYOND_PG_SINK_ACK=flush the same as received).",
            Number(flushedEnd() ?? 0n),
          ),
          gauge(
            "beyond_pg_sink_lag_bytes",
            "The primary's WAL position minus ours (every 10 s).",
            st.lagBytes ?? 0,
          ),
          counter(
            "beyond_pg_sink_reconnects_total",
            "Connections to the primary after the first.",
            st.reconnects,
          ),
          gauge(
            "beyond_pg_sink_disk_full",
            "1 when the last write failed for lack of space.",
            st.diskFull ? 1 : 0,
          ),
        ]));
      },
      other: sinkRoutes(store, s.token, () => (end(), status())),
    },
    { writeTimeoutMs: 120_000, maxConnections: 16 },
    tls,
  );
  log.info(
    `wal-sink ${s.name}: keeping ${s.dir}, following ${s.primary.host}:${s.primary.port}; ${
      tls ? "https" : "http"
    }://${s.http.hostname}:${server.addr.port}`,
  );
  receiver.start();
  flusher?.start();

  // The primary's position (IDENTIFY_SYSTEM), for the lag; with ack=write, its default
  // synchronous_commit (a sink that answers on write must not serve a primary at `on`).
  const probeTarget = {
    conninfo: upstreamConninfo({
      host: s.primary.host,
      port: s.primary.port,
      name: `${s.name}_probe`.slice(0, 63),
      passfile: passfilePath({ runDir: s.runDir }),
    }),
    timeoutMs: 8000,
  };
  const probeOnce = async () => {
    try {
      // One connection for both: psql runs each -c in turn, a line each.
      const r = await replicationCommand(
        binDir,
        flusher ? ["IDENTIFY_SYSTEM", "SHOW synchronous_commit"] : "IDENTIFY_SYSTEM",
        probeTarget,
      );
      const [identity = "", level] = r.stdout.trim().split("\n");
      const lsn = parseLsn(identity.split("|")[2] ?? "");
      if (lsn !== undefined) primaryLsn = lsn;
      if (flusher && r.code === 0 && level) {
        const warning = levelWarningFor(level.trim());
        if (warning && warning !== levelWarning) log.warn(`wal-sink: ${warning}`);
        levelWarning = warning;
      }
    } catch { /* the next round */ }
  };
  const probe = setInterval(probeOnce, 10_000);
  void probeOnce();
  // The partial's valid end, followed every second (a walk of what arrived since): a gap
  // fetch's listing then answers at once instead of walking up to 16 MiB of WAL, the primary
  // up or not.
  const follow = setInterval(end, 1000);
  const prune = setInterval(() => {
    try {
      store.prune(s.keepMb);
    } catch (error) {
      log.warn(`wal-sink: retention: ${errorMessage(error)}`);
    }
  }, 30_000);

  await new Promise<void>((r) => latch.onStop(() => r()));
  log.info(`wal-sink ${s.name}: stopping (${latch.reason})`);
  clearInterval(probe);
  clearInterval(follow);
  clearInterval(prune);
  await receiver.close();
  await flusher?.close();
  await server.shutdown();
  return 0;
}

function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${
    (lsn & 0xffffffffn).toString(16).toUpperCase()
  }`;
}
