/** Where child output goes when no log forwarder is configured: our stderr, prefixed. */
import type { OutputSink } from "../supervise/child.ts";

const encoder = new TextEncoder();

export const stderrSink: OutputSink = (source, line) => {
  try {
    Deno.stderr.writeSync(encoder.encode(`[${source}] ${line}\n`));
  } catch { /* stderr gone: keep supervising */ }
};
