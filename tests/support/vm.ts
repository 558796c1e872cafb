/**
 * The microVM harness: QEMU `-M microvm` (virtio-mmio, like Firecracker) booting an image from
 * scripts/build-image.sh with beyond-pg as /sbin/init; rootfs on vda (throwaway writes), a
 * data disk on vdb (kept), user networking with `restrict=on` and explicit forwards only:
 * hostfwd for 5432 and 9188 on 127.0.0.1 (5433 is loopback-only inside the guest, by
 * design), guestfwd for 169.254.169.254:80 to an MMDS
 * emulator on loopback. The guest can reach nothing else. KVM when it is usable here, else TCG.
 * The power button is pressed through QMP (`system_powerdown`).
 */
import { exists } from "../../src/util/fs.ts";
import { freePort, readLines } from "./harness.ts";
import { type MmdsEmulator, startMmdsEmulator } from "./mmds_emulator.ts";

export interface Image {
  rootfs: string;
  kernel: string;
  initrd: string;
}

export function accelerator(): { args: string[]; name: "kvm" | "tcg" } {
  let kvmUsable = false;
  try {
    const dev = Deno.openSync("/dev/kvm", { read: true, write: true });
    dev.close();
    // kvm_pvm (this sandbox) only runs PVM guest kernels; a stock kernel hangs under it.
    kvmUsable = !Deno.statSync("/sys/module").isDirectory || !exists("/sys/module/kvm_pvm");
  } catch { /* no /dev/kvm */ }
  if (kvmUsable && !Deno.env.get("FORCE_TCG")) {
    return { args: ["-accel", "kvm", "-cpu", "host"], name: "kvm" };
  }
  return { args: ["-accel", "tcg,thread=multi", "-cpu", "max"], name: "tcg" };
}

/** Whether QEMU can run at all here (the e2e tests skip with this reason otherwise). */
export function qemuUnavailable(): string | undefined {
  try {
    const out = new Deno.Command("qemu-system-x86_64", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    if (!out.success) return "qemu-system-x86_64 does not run";
  } catch {
    return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)";
  }
  if (Deno.uid() !== 0) return "building the image needs root (debootstrap, chroot)";
  return undefined;
}

export interface BootOptions {
  image: Image;
  dataDisk: string;
  metadata: Record<string, unknown>;
  memoryMb?: number;
  cpus?: number;
  /** Extra kernel command line words. */
  cmdline?: string;
}

export class Vm {
  readonly console: string[] = [];
  readonly accel: "kvm" | "tcg";
  readonly port: number;
  readonly httpPort: number;
  readonly startedAt = performance.now();
  readonly exited: Promise<Deno.CommandStatus>;
  readonly #proc: Deno.ChildProcess;
  readonly #mmds: MmdsEmulator;
  readonly #qmp: string;
  readonly #dir: string;
  readonly #waiters = new Set<() => void>();
  #done = false;

  private constructor(
    proc: Deno.ChildProcess,
    mmds: MmdsEmulator,
    o: {
      accel: "kvm" | "tcg";
      port: number;
      httpPort: number;
      qmp: string;
      dir: string;
    },
  ) {
    this.#proc = proc;
    this.#mmds = mmds;
    this.accel = o.accel;
    this.port = o.port;
    this.httpPort = o.httpPort;
    this.#qmp = o.qmp;
    this.#dir = o.dir;
    const pump = (stream: ReadableStream<Uint8Array>) =>
      readLines(stream, (line) => this.console.push(line.replace(/\r$/, "")), () => {
        for (const w of this.#waiters) w();
      });
    const pumps = Promise.all([pump(proc.stdout), pump(proc.stderr)]);
    this.exited = proc.status.then(async (s) => {
      await pumps;
      this.#done = true;
      for (const w of this.#waiters) w();
      await this.#mmds.close().catch(() => {});
      return s;
    });
  }

  static async boot(o: BootOptions): Promise<Vm> {
    const dir = await Deno.makeTempDir({ prefix: "bpg-vm-" });
    const mmds = startMmdsEmulator(o.metadata);
    const port = freePort();
    const httpPort = freePort();
    const accel = accelerator();
    const khz = Deno.readTextFileSync("/proc/cpuinfo").match(/cpu MHz\s*:\s*([\d.]+)/)?.[1];
    const qmp = `${dir}/qmp.sock`;
    const cmdline = [
      "console=ttyS0",
      "root=/dev/vda",
      "rw",
      "net.ifnames=0",
      "panic=-1",
      ...(khz ? [`tsc_early_khz=${Math.round(Number(khz) * 1000)}`] : []),
      // eth0 inside the user network; the kernel or (without IP_PNP) our init applies it.
      "ip=169.254.169.15::169.254.169.2:255.255.255.0::eth0:off",
      "init=/sbin/init",
      ...(o.cmdline ? [o.cmdline] : []),
    ].join(" ");
    const net = [
      "user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2",
      `hostfwd=tcp:127.0.0.1:${port}-:5432`,
      `hostfwd=tcp:127.0.0.1:${httpPort}-:9188`,
      `guestfwd=tcp:169.254.169.254:80-tcp:127.0.0.1:${mmds.port}`,
    ].join(",");
    const proc = new Deno.Command("qemu-system-x86_64", {
      args: [
        "-M",
        "microvm,x-option-roms=off,pit=on,pic=on,rtc=on,acpi=on",
        ...accel.args,
        "-smp",
        String(o.cpus ?? 2),
        "-m",
        String(o.memoryMb ?? 1024),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-qmp",
        `unix:${qmp},server=on,wait=off`,
        "-kernel",
        o.image.kernel,
        "-initrd",
        o.image.initrd,
        "-append",
        cmdline,
        "-drive",
        `id=root,file=${o.image.rootfs},format=raw,if=none,snapshot=on`,
        "-device",
        "virtio-blk-device,drive=root",
        "-drive",
        `id=data,file=${o.dataDisk},format=raw,if=none,cache=writeback`,
        "-device",
        "virtio-blk-device,drive=data",
        "-netdev",
        net,
        "-device",
        "virtio-net-device,netdev=n0",
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new Vm(proc, mmds, { accel: accel.name, port, httpPort, qmp, dir });
  }

  get mmds(): MmdsEmulator {
    return this.#mmds;
  }

  waitFor(pattern: RegExp, ms = 180_000, from = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.console.slice(from).find((l) => pattern.test(l));
        if (hit !== undefined) {
          done();
          resolve(hit);
        } else if (this.#done) {
          done();
          reject(
            new Error(
              `VM exited before ${pattern}; console:\n${this.console.slice(-40).join("\n")}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `timed out waiting for ${pattern}; console:\n${this.console.slice(-40).join("\n")}`,
          ),
        );
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** ACPI power button (what `virsh shutdown` or a cloud "stop" does). */
  async powerButton(): Promise<void> {
    const conn = await Deno.connect({ transport: "unix", path: this.#qmp });
    const enc = new TextEncoder();
    try {
      await conn.write(enc.encode('{"execute":"qmp_capabilities"}\n'));
      await new Promise((r) => setTimeout(r, 200));
      await conn.write(enc.encode('{"execute":"system_powerdown"}\n'));
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      conn.close();
    }
  }

  /** Seconds since QEMU started. */
  elapsed(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  async kill(): Promise<void> {
    if (!this.#done) {
      try {
        this.#proc.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await this.exited.catch(() => {});
    await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
  }
}

/** A sparse raw disk of `mb` MiB. */
export function blankDisk(path: string, mb: number): void {
  const f = Deno.openSync(path, { write: true, create: true, truncate: true });
  f.truncateSync(mb * 1024 * 1024);
  f.close();
}
