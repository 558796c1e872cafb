/**
 * EFFECT: the init duties of PID 1 in our own VM. Each step logs what it did; a step that
 * cannot be done on this kernel (a missing sysctl, no zram module) is a warning, not a failed
 * boot. Mounts and reboot go through ffi/; network configuration through iproute2's `ip`.
 */
import {
  ErrnoError,
  MNT_DETACH,
  mount,
  MS_NODEV,
  MS_NOEXEC,
  MS_NOSUID,
  MS_RELATIME,
  reboot,
  sethostname,
  swapon,
  sync,
  umount,
} from "../../ffi/mod.ts";
import { RootTree } from "../fs/tree.ts";
import { run } from "../process/spawner.ts";
import { errorMessage, OperatorError } from "../util/errors.ts";
import { log } from "../util/log.ts";
import {
  mountPoints,
  parseIpParam,
  parseIpv6,
  parseSysctl,
  renderResolvConf,
  sysctlPath,
} from "./parse.ts";

function mounted(): Set<string> {
  try {
    return mountPoints(Deno.readTextFileSync("/proc/self/mounts"));
  } catch {
    return new Set(); // /proc not mounted yet
  }
}

/** The system's own files (mount points, /etc, /proc/sys): PID 1's to change. */
const system = RootTree.system();

/** Write a small system file (a sysctl, a zram knob, /etc/hostname). */
export function writeSystemFile(path: string, text: string): void {
  const f = system.open(path, { write: true, create: true, truncate: true });
  try {
    f.writeSync(new TextEncoder().encode(text));
  } finally {
    f.close();
  }
}

function tryMount(source: string, target: string, fstype: string, flags: number, data = ""): void {
  try {
    system.ensureDir(target, 0o755, { keepMode: true });
    mount(source, target, fstype, flags, data);
  } catch (error) {
    if (error instanceof ErrnoError && error.code === "EBUSY") return; // already there
    log.warn(`${errorMessage(error)}; continuing without ${target}`);
  }
}

/** /proc, /sys, /dev, /dev/pts, /dev/shm (sized from RAM), /run, /tmp — each once. */
export function mountEarly(ramMb: number): void {
  if (!mounted().has("/proc")) tryMount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  const have = mounted();
  const want: [string, string, string, number, string][] = [
    ["sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""],
    ["devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755"],
    ["devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=620,ptmxmode=000"],
    // POSIX shared memory (dynamic_shared_memory_type = posix): half of RAM at most.
    [
      "tmpfs",
      "/dev/shm",
      "tmpfs",
      MS_NOSUID | MS_NODEV,
      `mode=1777,size=${Math.max(64, Math.floor(ramMb / 2))}m`,
    ],
    ["tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m"],
    ["tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"],
  ];
  for (const [src, target, type, flags, data] of want) {
    if (!have.has(target)) tryMount(src, target, type, flags, data);
  }
}

async function sh(cmd: string, args: string[], what: string): Promise<boolean> {
  try {
    const r = await run(cmd, args, { check: false, timeoutMs: 10_000 });
    if (r.code === 0) return true;
    log.warn(
      `${what}: ${cmd} ${args.join(" ")} exited ${r.code}: ${
        (r.stderr || r.stdout).trim().split("\n")[0]
      }`,
    );
  } catch (error) {
    log.warn(`${what}: ${errorMessage(error)}`);
  }
  return false;
}

export async function loadModules(names: string[]): Promise<void> {
  for (const name of names) await sh("modprobe", ["-q", name], `module ${name}`);
}

async function hasIpv4(device: string): Promise<boolean> {
  const r = await run("ip", ["-4", "-o", "addr", "show", "dev", device], { check: false });
  return r.code === 0 && / inet /.test(r.stdout);
}

const MMDS = "169.254.169.254";
/** The routing table (and rule priority) only root's traffic may use to reach metadata. */
const MMDS_TABLE = "169";
let mmdsOpenToAll = false;

/**
 * The metadata service holds the password and the S3 keys, and any local uid could otherwise
 * ask it (postgres runs shell commands for a superuser). So its route lives in a table only
 * uid 0 looks up (policy routing by uid), and everyone else gets "unreachable". Without policy
 * routing in the kernel the route is plain, and `closeMetadataRoute` removes it once PID 1 has
 * read the metadata, before any child runs.
 */
async function routeMetadata(device: string): Promise<void> {
  const ruled =
    await sh("ip", ["route", "replace", MMDS, "dev", device, "table", MMDS_TABLE], "MMDS route") &&
    (await run("ip", ["rule", "del", "priority", MMDS_TABLE], { check: false }).then(() => true)) &&
    await sh(
      "ip",
      ["rule", "add", "priority", MMDS_TABLE, "uidrange", "0-0", "table", MMDS_TABLE],
      "MMDS rule",
    ) &&
    await sh("ip", ["route", "replace", "unreachable", MMDS], "MMDS route");
  if (!ruled) {
    mmdsOpenToAll = true;
    log.warn("metadata: no uid routing here; the route is removed once metadata is read");
    await sh("ip", ["route", "replace", MMDS, "dev", device], "MMDS route");
  }
}

/** After metadata is read: if every uid could reach it, nobody can any more. */
export async function closeMetadataRoute(): Promise<void> {
  if (!mmdsOpenToAll) return;
  await sh("ip", ["route", "replace", "unreachable", MMDS], "MMDS route");
  mmdsOpenToAll = false;
}

/** lo and eth0 up; IPv4 from ip= when the kernel did not apply it; MMDS route; IPv6; DNS. */
export async function configureNetwork(cmdline: Map<string, string>): Promise<void> {
  await sh("ip", ["link", "set", "lo", "up"], "network");
  const ip = parseIpParam(cmdline.get("ip") ?? "");
  const device = ip?.device ?? "eth0";
  try {
    Deno.statSync(`/sys/class/net/${device}`);
  } catch {
    log.info(`no ${device}: networking left as the kernel set it`);
    return;
  }
  await sh("ip", ["link", "set", device, "up"], "network");
  if (ip && !(await hasIpv4(device))) {
    await sh("ip", ["addr", "add", `${ip.address}/${ip.prefix}`, "dev", device], "network");
    if (ip.gateway) await sh("ip", ["route", "add", "default", "via", ip.gateway], "network");
  }
  await routeMetadata(device);
  const v6 = parseIpv6(cmdline);
  for (const addr of v6.addresses) {
    await sh("ip", ["-6", "addr", "add", addr, "dev", device], "IPv6");
  }
  if (v6.gateway) {
    await sh("ip", ["-6", "route", "add", "default", "via", v6.gateway, "dev", device], "IPv6");
  }
  try {
    writeSystemFile("/etc/resolv.conf", renderResolvConf(v6.gateway));
  } catch (error) {
    log.warn(`resolv.conf: ${errorMessage(error)}`);
  }
}

export function applySysctls(text: string): { applied: number; skipped: string[] } {
  let applied = 0;
  const skipped: string[] = [];
  for (const [key, value] of parseSysctl(text)) {
    try {
      writeSystemFile(sysctlPath(key), value);
      applied++;
    } catch (error) {
      skipped.push(key);
      log.warn(`sysctl ${key} = ${value} skipped: ${errorMessage(error).split(":")[0]}`);
    }
  }
  return { applied, skipped };
}

export function setHostname(name: string): void {
  try {
    sethostname(name);
    writeSystemFile("/etc/hostname", name + "\n");
  } catch (error) {
    log.warn(`hostname ${name}: ${errorMessage(error)}`);
  }
}

/** zram swap of `mb` MiB (compressed in RAM; spares shared_buffers from disk swap). */
export async function setUpZram(mb: number): Promise<void> {
  if (!(await sh("modprobe", ["-q", "zram"], "zram"))) return;
  try {
    writeSystemFile("/sys/block/zram0/comp_algorithm", "lz4");
  } catch { /* kernel default */ }
  try {
    writeSystemFile("/sys/block/zram0/disksize", `${mb}M`);
    if (await sh("mkswap", ["/dev/zram0"], "zram")) {
      swapon("/dev/zram0");
      log.info(`zram swap: ${mb} MiB`);
    }
  } catch (error) {
    log.warn(`zram swap not set up: ${errorMessage(error)}`);
  }
}

/** Is the device blank: no filesystem or partition signature and zeros where one would be? */
async function isBlank(device: string): Promise<boolean> {
  const probe = await run("blkid", ["-p", device], { check: false });
  if (probe.code === 0) return false; // a signature was found
  if (probe.code !== 2) {
    throw new OperatorError(`cannot inspect ${device}: blkid exited ${probe.code}`);
  }
  const f = await Deno.open(device, { read: true });
  try {
    const buf = new Uint8Array(1 << 20);
    let off = 0;
    while (off < buf.length) {
      const n = await f.read(buf.subarray(off));
      if (n === null) break;
      off += n;
    }
    return buf.subarray(0, off).every((b) => b === 0);
  } finally {
    f.close();
  }
}

/**
 * Mount the data volume at `target`, formatting it (ext4) only when it is blank; a device that
 * holds anything we do not recognise as blank is never formatted.
 */
export async function mountDataVolume(
  device: string,
  target: string,
): Promise<"mounted" | "formatted" | "absent"> {
  try {
    Deno.statSync(device);
  } catch {
    return "absent";
  }
  if (mounted().has(target)) return "mounted";
  let formatted = false;
  if (await isBlank(device)) {
    log.info(`data volume ${device} is blank: making an ext4 filesystem`);
    await run("mkfs.ext4", [
      "-q",
      "-L",
      "beyond-data",
      "-E",
      "lazy_itable_init=1,lazy_journal_init=1",
      device,
    ], {
      timeoutMs: 600_000,
    });
    formatted = true;
  }
  // mount(2) follows a link in its target: a link left where the volume goes (its parent may be
  // postgres's, and nothing of postgres runs yet at this point) would mount it elsewhere.
  if (system.stat(target)?.isSymlink) {
    log.warn(`${target} is a link; replacing it with a directory before mounting the data volume`);
    system.remove(target, false);
  }
  system.ensureDir(target, 0o755, { keepMode: true });
  try {
    mount(device, target, "ext4", MS_NOSUID | MS_NODEV | MS_RELATIME);
  } catch (error) {
    throw new OperatorError(
      `Cannot start: mounting ${device} on ${target} failed (${
        errorMessage(error)
      }); it holds data that is not an ext4 filesystem: attach the right disk`,
      { cause: error },
    );
  }
  return formatted ? "formatted" : "mounted";
}

/** Ctrl-Alt-Del → SIGINT to PID 1 instead of an immediate reboot (Firecracker's SendCtrlAltDel). */
export function ctrlAltDelToSignal(): void {
  try {
    reboot(0); // LINUX_REBOOT_CMD_CAD_OFF
  } catch (error) {
    log.warn(`ctrl-alt-del handling: ${errorMessage(error)}`);
  }
}

/**
 * The ACPI power button (QEMU/KVM `system_powerdown`, cloud "stop") → `onPress`. Reads the
 * input devices for KEY_POWER; quietly does nothing where there is no power button.
 */
export function watchPowerButton(onPress: () => void): void {
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync("/dev/input")].filter((e) => e.name.startsWith("event"));
  } catch {
    return;
  }
  for (const e of entries) {
    let name = "";
    try {
      name = Deno.readTextFileSync(`/sys/class/input/${e.name}/device/name`).trim();
    } catch { /* unnamed */ }
    if (!/power button/i.test(name)) continue;
    (async () => {
      const f = await Deno.open(`/dev/input/${e.name}`, { read: true });
      const ev = new Uint8Array(24); // struct input_event on 64-bit
      for (;;) {
        const n = await f.read(ev);
        if (n === null) return;
        const v = new DataView(ev.buffer);
        // type EV_KEY (1), code KEY_POWER (116), value 1 (press)
        if (
          n === 24 && v.getUint16(16, true) === 1 && v.getUint16(18, true) === 116 &&
          v.getInt32(20, true) === 1
        ) {
          log.info("power button pressed");
          onPress();
        }
      }
    })().catch((error) => log.warn(`power button: ${errorMessage(error)}`));
    log.info(`power button: /dev/input/${e.name} (${name})`);
  }
}

/** Sync, unmount what we mounted (data first), and power off. Never returns. */
export function powerOff(dataRoot: string | undefined): never {
  sync();
  for (const target of [dataRoot, "/tmp", "/run"]) {
    if (!target) continue;
    try {
      umount(target);
    } catch {
      try {
        umount(target, MNT_DETACH);
      } catch { /* busy: sync already made it consistent */ }
    }
  }
  sync();
  reboot(0x4321fedc); // LINUX_REBOOT_CMD_POWER_OFF
  // reboot only returns on failure; PID 1 must not exit (that panics the kernel).
  for (;;) {
    try {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
    } catch { /* not allowed on this thread: keep looping */ }
  }
}
