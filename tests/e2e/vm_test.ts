/**
 * End to end, in a real microVM (QEMU microvm; KVM when usable, else TCG) with beyond-pg as
 * /sbin/init: first boot on a blank data disk, login through the forwarded 5432 with the
 * metadata password, clean power-off, reboot on the same disk, an image swap, and a boot
 * without a password that fails closed. Also: zero zombies after 50 hook-made orphans, the
 * control RPC and log frames over vsock (guest loopback, never CID 2).
 */
import assert from "node:assert/strict";
import { psql, removeRoot, tempRoot } from "../support/harness.ts";
import { blankDisk, type Image, qemuUnavailable, Vm } from "../support/vm.ts";
import { buildImage } from "./image.ts";
import { clusterStateOf } from "../../src/boot/pg_control.ts";

const skip = qemuUnavailable();
if (skip) console.log(`e2e VM tests skipped: ${skip}`);
const READY = /\[beyond-pg\] ready: |beyond-pg: ready: /;
const PASSWORD = "e2e-metadata-secret";
const metadata = (extra: Record<string, unknown> = {}) => ({
  POSTGRES_PASSWORD: PASSWORD,
  BEYOND_PG_HOOKS_DIR: "/etc/beyond-pg-test/hooks",
  BEYOND_LOG_VSOCK: "true",
  BEYOND_LOG_VSOCK_CID: "1", // the guest's own loopback, never the host
  BEYOND_LOG_VSOCK_PORT: "5002",
  // The post-start hook calls control over vsock_loopback: its peer CID is 1, not the host's 2.
  BEYOND_PG_CONTROL_VSOCK_PEER_CID: "1",
  BEYOND_PG_HTTP: "0.0.0.0:9188",
  ...extra,
});
const CMDLINE = "beyond_modules=vsock_loopback";

/** The cluster state on an (unmounted) data disk image: pg_control read with debugfs. */
async function diskClusterState(disk: string): Promise<string> {
  const dir = await Deno.makeTempDir();
  try {
    const dump = await new Deno.Command("debugfs", {
      args: ["-R", `dump /main/global/pg_control ${dir}/pg_control`, disk],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(dump.success, new TextDecoder().decode(dump.stderr));
    return clusterStateOf(Deno.readFileSync(`${dir}/pg_control`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function untilQuery(vm: Vm, sql: string, ms = 60_000): Promise<string> {
  const until = performance.now() + ms;
  for (;;) {
    try {
      return await psql(vm.port, sql, { password: PASSWORD });
    } catch (error) {
      if (performance.now() > until) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function powerOff(vm: Vm): Promise<void> {
  await vm.powerButton();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const status = await Promise.race([
    vm.exited,
    new Promise<never>((
      _,
      rej,
    ) => (timer = setTimeout(() => rej(new Error("VM did not power off")), 120_000))),
  ]).finally(() => clearTimeout(timer));
  assert.equal(status.code, 0, "QEMU exit status");
  assert.ok(vm.console.some((l) => /stopped cleanly/.test(l)), "no clean stop on the console");
}

Deno.test({
  name: "microVM: boot, login, power off, reboot, image swap; fails closed without a password",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const work = await tempRoot("bpg-e2e-");
    let v1: Image | undefined;
    const disk = `${work}/data.img`;
    blankDisk(disk, 3072);
    const vms: Vm[] = [];
    /** Boot, run `fn`, and always stop that VM before the next step uses its disk. */
    const withVm = async (
      image: Image,
      meta: Record<string, unknown>,
      fn: (vm: Vm) => Promise<void>,
      dataDisk = disk,
    ) => {
      const vm = await Vm.boot({ image, dataDisk, metadata: meta, cmdline: CMDLINE });
      vms.push(vm);
      try {
        await fn(vm);
      } finally {
        for (const l of vm.console.filter((l) => /^e2e: (memory|vmdata)/.test(l))) console.log(l);
        await vm.kill();
      }
    };
    try {
      await t.step(
        "build the image (debootstrap + packer/scripts + our build as /sbin/init)",
        async () => {
          v1 = await buildImage("v1");
        },
      );
      const major = Number(
        new TextDecoder().decode(
          (await new Deno.Command("debugfs", {
            args: ["-R", "ls /usr/lib/postgresql", v1!.rootfs],
            stdout: "piped",
            stderr: "null",
          })
            .output()).stdout,
        ).match(/\b(1[5-9])\b/)?.[1] ?? 15,
      );

      await t.step(
        "first boot on a blank disk: psql through 5432 with the metadata password",
        () =>
          withVm(v1!, metadata(), async (vm) => {
            await vm.waitFor(READY);
            assert.ok(vm.console.some((l) => /data volume \/dev\/vdb formatted/.test(l)));
            assert.ok(vm.console.some((l) => /init: PID 1 at uptime/.test(l)));
            await untilQuery(vm, "select 1");
            await psql(
              vm.port,
              "create table e2e(n int); insert into e2e select generate_series(1, 100)",
              { password: PASSWORD },
            );
            // Metadata (the password, the S3 keys) is routed for root only: a superuser's shell
            // command, which runs as postgres, cannot reach it.
            assert.equal(await vm.waitFor(/e2e: mmds root=/, 60_000), "e2e: mmds root=reachable");
            await assert.rejects(
              psql(
                vm.port,
                "copy (select 1) to program 'curl -s -m 3 -o /dev/null http://169.254.169.254/'",
                { password: PASSWORD },
              ),
              /program .*failed|exit code|child process exited/i,
            );
            // 50 orphans from a hook, and nothing left as a zombie.
            assert.equal(await vm.waitFor(/e2e: zombies=\d+/, 60_000), "e2e: zombies=0");
            // The control RPC over vsock, and log frames decoded by a receiver in the guest.
            assert.match(
              await vm.waitFor(/e2e: vsock health/, 60_000),
              /e2e: vsock health "ok":true/,
            );
            await vm.waitFor(/\[vsock-log\] #\d+ (beyond-pg|postgres|pgbouncer): /, 60_000);
            const metrics = await (await fetch(`http://127.0.0.1:${vm.httpPort}/metrics`)).text();
            assert.match(metrics, /^beyond_pg_up 1$/m);
            await powerOff(vm);
            assert.equal(await diskClusterState(disk), "shut down");
          }),
      );

      await t.step(
        "second boot on the same disk: rows kept, no initdb; huge pages when asked for",
        () =>
          withVm(v1!, metadata({ BEYOND_PG_HUGE_PAGES: "on" }), async (vm) => {
            await vm.waitFor(READY);
            assert.equal(vm.console.some((l) => /first boot/.test(l)), false);
            assert.equal(await untilQuery(vm, "select count(*) from e2e"), "100");
            // Reserved before postgres started, trimmed to what it mapped once it was up.
            await vm.waitFor(/huge pages: postgres maps [1-9]\d* \(\d+ MiB\)/);
            if (major >= 17) {
              assert.equal(
                await psql(vm.port, "show huge_pages_status", { password: PASSWORD }),
                "on",
              );
            }
            // A user setting in 99-user.conf, written through SQL (the file is the user's).
            await psql(
              vm.port,
              `copy (select 'work_mem = ''7MB''') to '/var/lib/postgresql/${major}/main/conf.d/99-user.conf'`,
              {
                password: PASSWORD,
              },
            );
            await psql(vm.port, "select pg_reload_conf()", { password: PASSWORD });
            await powerOff(vm);
          }),
      );

      await t.step(
        "image swap: a new 00-beyond.conf value is active, 99-user.conf is kept",
        async () => {
          const v2 = await buildImage("v2");
          await withVm(v2, metadata(), async (vm) => {
            await vm.waitFor(READY);
            assert.equal(await untilQuery(vm, "show bgwriter_lru_maxpages"), "1001");
            assert.equal(await psql(vm.port, "show work_mem", { password: PASSWORD }), "7MB");
            assert.equal(
              await psql(vm.port, "select count(*) from e2e", { password: PASSWORD }),
              "100",
            );
            await powerOff(vm);
          });
        },
      );

      await t.step(
        "no password in metadata: one-line error on the console, power off, disk untouched",
        async () => {
          const blank = `${work}/blank.img`;
          blankDisk(blank, 512);
          const meta = metadata();
          delete (meta as Record<string, unknown>).POSTGRES_PASSWORD;
          await withVm(v1!, meta, async (vm) => {
            const status = await vm.exited;
            assert.equal(status.code, 0);
            assert.ok(
              vm.console.some((l) =>
                l.includes(
                  "beyond-pg: Cannot start: POSTGRES_PASSWORD is not set in metadata or environment; set it (or POSTGRES_PASSWORD_FILE) to a non-empty secret",
                )
              ),
              vm.console.slice(-20).join("\n"),
            );
            const f = await Deno.open(blank);
            const buf = new Uint8Array(16 << 20);
            const n = (await f.read(buf)) ?? 0;
            f.close();
            assert.ok(buf.subarray(0, n).every((b) => b === 0), "the data disk was written to");
          }, blank);
        },
      );
    } finally {
      for (const vm of vms) await vm.kill();
      await removeRoot(work);
    }
  },
});
