/**
 * EFFECT: every line of postgres, PgBouncer and the supervisor through one forwarder (rate
 * limit, bounded queue, a sink that may be slow): stderr, or vsock to the host when asked for
 * (retried while the receiver is away, stderr meanwhile).
 */
import type { Context } from "../boot/context.ts";
import { LogForwarder } from "../logs/forwarder.ts";
import { StderrSink, VsockSink } from "../logs/sinks.ts";
import type { OutputPump } from "../supervise/child.ts";
import { errorMessage } from "../util/errors.ts";
import { log, setLogWriter } from "../util/log.ts";

/** Children write straight to our stderr (BEYOND_PG_LOG_CAPTURE=false). */
export const inheritOutput: OutputPump = { inherit: true, pump: () => Promise.resolve() };

export async function setUpLogging(ctx: Context, inOwnVm: boolean): Promise<LogForwarder> {
  const s = ctx.settings;
  const forwarder = new LogForwarder(new StderrSink(), {
    rate: s.logRate,
    burst: s.logBurst,
    maxLineBytes: s.logMaxLine,
  });
  setLogWriter((line) => forwarder.write("beyond-pg", line.replace(/^\[beyond-pg\] /, "")));
  const wantVsock = s.logVsock === "true" || (s.logVsock === "auto" && inOwnVm);
  if (wantVsock) {
    const target = `${s.logVsockCid}:${s.logVsockPort}`;
    const connect = async (first: boolean) => {
      try {
        const sink = await VsockSink.connect(s.logVsockCid, s.logVsockPort, 1000, () => {
          forwarder.setSink(new StderrSink());
          log.warn(`log vsock ${target} went away; logging to stderr and retrying`);
          setTimeout(() => connect(false), 2000);
        });
        forwarder.setSink(sink);
        log.info(`logs go to vsock ${target}`);
      } catch (error) {
        if (first) {
          log.warn(
            `log vsock ${target} unavailable (${errorMessage(error)}); logging to stderr, retrying`,
          );
        }
        setTimeout(() => connect(false), 2000);
      }
    };
    await connect(true);
  }
  return forwarder;
}
