/**
 * PID 1. In our own VM: the init duties (init/system.ts), then the supervisor in-process, then
 * sync, unmount and power off — on a clean stop and on any error alike, because PID 1 exiting
 * would panic the kernel. In a container (PID 1 of a PID namespace): no mounts or network,
 * only the reaper and signal handling, then exit with the supervisor's code.
 *
 * Order matters: settings (with the password) are validated before the data disk is touched,
 * so a VM booted without a password fails closed with one line and an untouched disk.
 */
import sysctlText from "../../conf/sysctl.d/99-postgres.conf" with { type: "text" };
import { StopLatch } from "../app/latch.ts";
import { runDatabase } from "../app/root.ts";
import { buildContext } from "../boot/context.ts";
import { kernelRamMb } from "../resources/resources.ts";
import { loadRawSettings, resolveMmdsUrl } from "../settings/load.ts";
import { errorMessage } from "../util/errors.ts";
import { log } from "../util/log.ts";
import { reserveHugePages, trimHugePages } from "./hugepages.ts";
import { parseCmdline } from "./parse.ts";
import type { Platform } from "./platform.ts";
import { Reaper } from "./reaper.ts";
import {
  applySysctls,
  closeMetadataRoute,
  configureNetwork,
  ctrlAltDelToSignal,
  loadModules,
  mountDataVolume,
  mountEarly,
  powerOff,
  setHostname,
  setUpZram,
  watchPowerButton,
} from "./system.ts";
import { sleep } from "../util/sleep.ts";
import { defaultDataDevice } from "../settings/defaults.ts";

function uptime(): string {
  try {
    return Deno.readTextFileSync("/proc/uptime").split(" ")[0] ?? "?";
  } catch {
    return "?";
  }
}

/** PID 1 must never die of an error nobody caught: log it and keep going. */
function keepGoing(): void {
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    log.error(`uncaught: ${errorMessage(e.error ?? e.message)}`);
  });
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    log.error(`unhandled rejection: ${errorMessage(e.reason)}`);
  });
}

export async function initMain(platform: Platform): Promise<number> {
  keepGoing();
  // First thing: Deno as PID 1 without a SIGTERM listener crashes on SIGTERM.
  const latch = new StopLatch();
  latch.listenToSignals({ SIGINT: "SIGINT (ctrl-alt-del)" });
  const reaper = new Reaper();

  if (!platform.inOwnVm) {
    log.info(`PID 1 in a container: reaping orphans; no mounts of our own`);
    reaper.start();
    try {
      return await runDatabase(await buildContext({ inOwnVm: false }), {
        latch,
        inOwnVm: false,
      });
    } finally {
      reaper.stop();
      reaper.reapNow();
    }
  }

  let dataRoot: string | undefined;
  try {
    const ramMb = kernelRamMb();
    mountEarly(ramMb);
    log.info(`init: PID 1 at uptime ${uptime()} s`);
    ctrlAltDelToSignal();
    const cmdline = parseCmdline(Deno.readTextFileSync("/proc/cmdline")).values;
    await loadModules([
      "evdev",
      "button",
      ...(cmdline.get("beyond_modules") ?? "").split(",").filter(Boolean),
    ]);
    watchPowerButton(() => latch.request("power button"));
    await configureNetwork(cmdline);
    const sysctls = applySysctls(sysctlText);
    log.info(
      `sysctls: ${sysctls.applied} applied${
        sysctls.skipped.length ? `, ${sysctls.skipped.length} skipped` : ""
      }`,
    );
    reaper.start();

    // Metadata: retried until it answers (fail closed: no password, no database).
    const env = Deno.env.toObject();
    const raw = await loadRawSettings({
      major: 0,
      env,
      mmdsUrl: resolveMmdsUrl(env, true),
      mmdsDeadlineMs: Number.POSITIVE_INFINITY,
    });
    await closeMetadataRoute();
    // Validate everything (the password above all) before touching the data disk.
    const ctx = await buildContext({ env: { ...raw, BEYOND_MMDS_URL: "off" } });
    setHostname(raw["BEYOND_HOSTNAME"] || cmdline.get("hostname") || "beyond-pg");
    const device = raw["BEYOND_PG_DATA_DEVICE"] || defaultDataDevice;
    const volume = await mountDataVolume(device, ctx.layout.dataRoot);
    dataRoot = volume === "absent" ? undefined : ctx.layout.dataRoot;
    if (volume === "absent") {
      log.warn(`no data volume at ${device}: the database lives on the root disk`);
    } else log.info(`data volume ${device} ${volume} on ${ctx.layout.dataRoot}`);
    await setUpZram(Math.max(64, Math.floor(ramMb / 4)));
    log.info(`init: handing over to the supervisor at uptime ${uptime()} s`);

    // Reserved right before postgres starts (not during initdb, a clone or a restore), trimmed
    // to what it mapped once it is up.
    const huge = ctx.settings.hugePages === "on";
    const code = await runDatabase(ctx, {
      latch,
      inOwnVm: true,
      ...(huge
        ? { beforePostgres: () => reserveHugePages(ctx.ramMb), onReady: trimHugePages }
        : {}),
    });
    log.info(`supervisor exited ${code}; powering off`);
  } catch (error) {
    // Setup errors are one line on the console (as from the CLI), then a clean power-off.
    console.error(`beyond-pg: ${errorMessage(error)}`);
    log.error("init: cannot continue; powering off");
  }
  reaper.stop();
  reaper.reapNow();
  await sleep(100); // let the last console lines out
  powerOff(dataRoot);
}
