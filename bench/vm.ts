/**
 * Issue 3 benchmark: the microVM with beyond-pg as /sbin/init.
 *   - QEMU start → first query through 5432, on an existing data disk and on a blank one
 *     (accelerator reported: KVM or TCG), split into kernel (QEMU start → PID 1),
 *     init → postgres ready, post-start, and the rest (PgBouncer, first connection);
 *   - PID 1's RSS and CPU at idle after boot (target RSS ≤ 60 MB), read from /metrics;
 *   - `beyond-pg version` wall time for the built artifact (compiled vs bundle).
 * Usage: deno run -A bench/vm.ts [--runs N]   (root: it builds the image)
 */
import { buildImage } from "../tests/e2e/image.ts";
import { psql, removeRoot, tempRoot } from "../tests/support/harness.ts";
import { blankDisk, qemuUnavailable, Vm } from "../tests/support/vm.ts";
import { median, runsFromArgs, sh } from "./lib.ts";

const skip = qemuUnavailable();
if (skip) {
  console.log(`vm benchmark skipped: ${skip}`);
  Deno.exit(0);
}
const runs = runsFromArgs(3);
const PASSWORD = "bench-secret";
const image = await buildImage("v1");
const work = await tempRoot("bpg-vmbench-");

interface Sample {
  total: number;
  kernel: number;
  initToReady: number;
  postStart: number;
}

async function bootOnce(
  disk: string,
  wantRss = false,
  extra: Record<string, string> = {},
): Promise<Sample & { rss?: number; hwm?: number; cpu?: number; huge?: string }> {
  const vm = await Vm.boot({
    image,
    dataDisk: disk,
    metadata: {
      POSTGRES_PASSWORD: PASSWORD,
      BEYOND_PG_HTTP: "0.0.0.0:9188",
      BEYOND_LOG_VSOCK: "false",
      ...extra,
    },
  });
  try {
    let total = 0;
    for (;;) {
      try {
        await psql(vm.port, "select 1", { password: PASSWORD, env: { PGCONNECT_TIMEOUT: "2" } });
        total = vm.elapsed();
        break;
      } catch {
        if (vm.elapsed() > 300) {
          throw new Error(`no query after 300 s:\n${vm.console.slice(-20).join("\n")}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const init = Number((await vm.waitFor(/init: PID 1 at uptime/)).match(/uptime ([\d.]+)/)?.[1]);
    const phases = await vm.waitFor(/startup phases:/);
    const ms = (k: string) => Number(phases.match(new RegExp(`${k}_ms=(\\d+)`))?.[1] ?? 0) / 1000;
    // Guest uptime at PID 1 ≈ kernel + initramfs; total_ms is measured from the supervisor's start.
    const sample: Sample & { rss?: number; hwm?: number; cpu?: number; huge?: string } = {
      total,
      kernel: init,
      initToReady: ms("total") - ms("post_start") - ms("pgbouncer"),
      postStart: ms("post_start"),
    };
    sample.huge = vm.console.find((l) => /huge pages:/.test(l))?.replace(/.*huge pages: /, "");
    if (wantRss) {
      const scrape = async () =>
        await (await fetch(`http://127.0.0.1:${vm.httpPort}/metrics`)).text();
      const m0 = await scrape();
      const cpu0 = Number(m0.match(/^beyond_pg_process_cpu_seconds_total ([\d.e+-]+)/m)?.[1]);
      await new Promise((r) => setTimeout(r, 30_000));
      const m1 = await scrape();
      sample.rss = Number(m1.match(/^beyond_pg_process_resident_memory_bytes (\d+)/m)?.[1]) /
        2 ** 20;
      sample.hwm = Number(m1.match(/^beyond_pg_process_resident_memory_max_bytes (\d+)/m)?.[1]) /
        2 ** 20;
      sample.cpu =
        (Number(m1.match(/^beyond_pg_process_cpu_seconds_total ([\d.e+-]+)/m)?.[1]) - cpu0) / 30;
    }
    await vm.powerButton();
    await vm.exited;
    return sample;
  } finally {
    await vm.kill();
  }
}

try {
  const existing = `${work}/existing.img`;
  blankDisk(existing, 2048);
  await bootOnce(existing); // first boot makes it an existing disk
  const warm: Sample[] = [];
  const warmHuge: Sample[] = [];
  let huge: string | undefined;
  const cold: Sample[] = [];
  let idle: { rss?: number; hwm?: number; cpu?: number } = {};
  for (let i = 0; i < runs; i++) {
    const s = await bootOnce(existing, i === 0);
    if (i === 0) idle = s;
    warm.push(s);
    // The same disk with huge pages (BEYOND_PG_HUGE_PAGES=on), alternating.
    const h = await bootOnce(existing, false, { BEYOND_PG_HUGE_PAGES: "on" });
    huge ??= h.huge;
    warmHuge.push(h);
    const blank = `${work}/blank-${i}.img`;
    blankDisk(blank, 2048);
    cold.push(await bootOnce(blank));
    await Deno.remove(blank);
  }
  const accel = (await import("../tests/support/vm.ts")).accelerator().name.toUpperCase();
  const row = (name: string, xs: Sample[]) =>
    console.log(
      `${name}: ${
        median(xs.map((s) => s.total)).toFixed(1)
      } s to first query via 5432 (median of ${xs.length}; ${accel}) = ` +
        `kernel+initramfs ${median(xs.map((s) => s.kernel)).toFixed(1)} s, init → postgres ready ${
          median(xs.map((s) => s.initToReady)).toFixed(2)
        } s, post-start ${
          median(xs.map((s) => s.postStart)).toFixed(2)
        } s, rest (QEMU, PgBouncer, first connection) ${
          (median(xs.map((s) => s.total)) - median(xs.map((s) => s.kernel)) - median(xs.map((s) =>
            s.initToReady
          )) -
            median(xs.map((s) => s.postStart))).toFixed(1)
        } s  [${xs.map((s) => s.total.toFixed(1)).join(" ")}]`,
    );
  console.log(`# microVM benchmark (QEMU microvm, ${accel}, 2 vCPU, 1 GiB)`);
  row("existing data disk", warm);
  row("existing data disk, BEYOND_PG_HUGE_PAGES=on", warmHuge);
  console.log(
    `  init → postgres ready with huge pages vs without: ${
      (median(warmHuge.map((s) => s.initToReady)) / median(warm.map((s) => s.initToReady))).toFixed(
        2,
      )
    }× (huge pages: ${huge ?? "not reported"})`,
  );
  row("blank data disk (mkfs + seed first boot)", cold);
  console.log(
    `PID 1 at idle (30 s after boot): RSS ${idle.rss?.toFixed(1)} MB, peak ${
      idle.hwm?.toFixed(1)
    } MB (target ≤ 60 MB: ${(idle.hwm ?? 999) <= 60 ? "PASS" : "FAIL"}), CPU ${
      ((idle.cpu ?? 0) * 100).toFixed(2)
    }%`,
  );
  const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  await sh(Deno.execPath(), ["task", "--quiet", "build"], {
    env: { PATH: Deno.env.get("PATH") ?? "" },
  });
  const kind = Deno.readTextFileSync(`${repo}/dist/BUILD`).trim();
  const times: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await sh(`${repo}/dist/beyond-pg`, ["version"]);
    times.push(performance.now() - t);
  }
  console.log(
    `beyond-pg version: ${median(times).toFixed(0)} ms (${kind}; median of 10)${
      kind === "bundle" ? "; compiled: not measurable here (no denort runtime: set DENORT_BIN)" : ""
    }`,
  );
} finally {
  await removeRoot(work);
}
