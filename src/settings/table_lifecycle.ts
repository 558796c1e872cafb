/** PURE: the settings table's lifecycle rows (fork, idle shutdown); table.ts merges them. */
import { choice, type SettingContext, SettingsError, wholeNumber } from "./parsers.ts";
import { setting } from "./setting.ts";

/** A volume id as platforms spell them: letters, digits and `._:-`, at most 128. */
export function volumeId(value: string, c: SettingContext): string {
  const v = value.trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(v)) {
    throw new SettingsError(
      `${c.name}=${
        JSON.stringify(value.slice(0, 60))
      } is not a volume id; use letters, digits and . _ : - (at most 128)`,
    );
  }
  return v;
}

/** Group "platform": what the volume is. */
export const volumeSettings = {
  BEYOND_PG_VOLUME_ID: setting({
    group: "platform",
    doc: "the platform's id of the data volume; a new id on a known volume means it is a fork",
    parse: volumeId,
  }),
  BEYOND_PG_FORK_OF: setting({
    group: "platform",
    doc: "the parent volume's id on a fork (never archives to the parent's prefix)",
    parse: volumeId,
  }),
};

/** Group "supervision". */
export const lockWaitSettings = {
  BEYOND_PG_LOCK_WAIT: setting({
    group: "supervision",
    shown: "1.5 s",
    doc: "seconds to wait for the volume's lock (a next generation started before a handoff)",
    parse: wholeNumber(0, 86400),
  }),
};

export const hugePageSettings = {
  BEYOND_PG_HUGE_PAGES: setting({
    group: "supervision",
    default: "off",
    doc:
      "`on`: as PID 1 in its own VM, reserve huge pages for postgres's shared memory (trimmed to what it maps once up); `off`",
    parse: choice(["on", "off"] as const),
  }),
};

export const idleSettings = {
  BEYOND_PG_IDLE_SHUTDOWN: setting({
    group: "supervision",
    default: "off",
    doc: "seconds without clients or backlog before a clean stop (exit 0 / power off); `off`",
    parse: (v, c) => v === "off" || v === "0" ? undefined : wholeNumber(5, 7 * 86400)(v, c),
  }),
};
