/**
 * `beyond-pg wal-sink`: keep a copy of a primary's WAL on another host (Tier 1.5) and serve it
 * to the primary's next boot. Settings from the environment (and metadata when
 * BEYOND_MMDS_URL is set): BEYOND_PG_PRIMARY, BEYOND_PG_STANDBY_NAME (the slot),
 * BEYOND_PG_REPLICATION_PASSWORD, BEYOND_PG_WAL_SINK_TOKEN, BEYOND_PG_SINK_*.
 */
import { StopLatch } from "../app/latch.ts";
import { runSink } from "../app/wal_sink.ts";
import { fileSystemContext, loadRawSettings, resolveMmdsUrl } from "../settings/load.ts";
import { parseSinkSettings } from "../settings/settings.ts";
import { typoWarnings } from "../settings/typos.ts";
import { log } from "../util/log.ts";

export async function main(_args: string[]): Promise<number> {
  const latch = new StopLatch();
  latch.listenToSignals();
  const env = Deno.env.toObject();
  const raw = await loadRawSettings({ major: 0, env, mmdsUrl: resolveMmdsUrl(env, false) });
  for (const line of typoWarnings(raw)) log.warn(line);
  const settings = parseSinkSettings(raw, fileSystemContext(0));
  return await runSink(settings, latch);
}
