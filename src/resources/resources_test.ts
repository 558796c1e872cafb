import assert from "node:assert/strict";
import { countCpuList, detectResources, parseProcCgroup } from "./resources.ts";

const meminfo16g = "MemTotal:       16777216 kB\nMemFree:  1 kB\n";

function reader(files: Record<string, string>) {
  return (path: string) => files[path];
}

Deno.test("detectResources() reads cgroup v2 memory.max and cpu.max of the process's own group", () => {
  const r = detectResources(reader({
    "/proc/meminfo": meminfo16g,
    "/sys/devices/system/cpu/online": "0-7",
    "/proc/self/cgroup": "0::/app/pg\n",
    "/sys/fs/cgroup/cgroup.controllers": "cpu memory",
    "/sys/fs/cgroup/app/pg/memory.max": "536870912\n",
    "/sys/fs/cgroup/app/pg/cpu.max": "150000 100000\n",
  }));
  assert.deepEqual(r, { ramMb: 512, vcpus: 2, ramSource: "cgroup2", cpuSource: "cgroup2" });
});

Deno.test("detectResources() treats cgroup v2 'max' as unlimited and uses a parent's limit", () => {
  const r = detectResources(reader({
    "/proc/meminfo": meminfo16g,
    "/sys/devices/system/cpu/online": "0-3",
    "/proc/self/cgroup": "0::/a/b\n",
    "/sys/fs/cgroup/cgroup.controllers": "",
    "/sys/fs/cgroup/a/b/memory.max": "max\n",
    "/sys/fs/cgroup/a/memory.max": "2147483648\n",
    "/sys/fs/cgroup/a/b/cpu.max": "max 100000\n",
  }));
  assert.deepEqual(r, { ramMb: 2048, vcpus: 4, ramSource: "cgroup2", cpuSource: "proc" });
});

Deno.test("detectResources() reads cgroup v1 limit_in_bytes and cfs quota/period", () => {
  const r = detectResources(reader({
    "/proc/meminfo": meminfo16g,
    "/proc/cpuinfo": "processor : 0\nprocessor : 1\nprocessor : 2\nprocessor : 3\n",
    "/proc/self/cgroup": "4:memory:/docker/x\n2:cpu,cpuacct:/docker/x\n0::/\n",
    "/sys/fs/cgroup/memory/docker/x/memory.limit_in_bytes": "1073741824\n",
    "/sys/fs/cgroup/cpu/docker/x/cpu.cfs_quota_us": "100000\n",
    "/sys/fs/cgroup/cpu/docker/x/cpu.cfs_period_us": "100000\n",
  }));
  assert.deepEqual(r, { ramMb: 1024, vcpus: 1, ramSource: "cgroup1", cpuSource: "cgroup1" });
});

Deno.test("detectResources() ignores the cgroup v1 'unlimited' sentinel and a -1 quota", () => {
  const r = detectResources(reader({
    "/proc/meminfo": meminfo16g,
    "/sys/devices/system/cpu/online": "0-1",
    "/proc/self/cgroup": "4:memory:/\n2:cpu,cpuacct:/\n",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
  }));
  assert.deepEqual(r, { ramMb: 16384, vcpus: 2, ramSource: "proc", cpuSource: "proc" });
});

Deno.test("detectResources() falls back to /proc with no cgroup files at all", () => {
  const r = detectResources(reader({
    "/proc/meminfo": "MemTotal:        1000000 kB\n",
    "/proc/cpuinfo": "processor\t: 0\n\nprocessor\t: 1\n",
  }));
  assert.deepEqual(r, { ramMb: 976, vcpus: 2, ramSource: "proc", cpuSource: "proc" });
});

Deno.test("detectResources() never reports a cgroup limit above the machine's RAM", () => {
  const r = detectResources(reader({
    "/proc/meminfo": "MemTotal:        1048576 kB\n",
    "/sys/devices/system/cpu/online": "0",
    "/proc/self/cgroup": "0::/\n",
    "/sys/fs/cgroup/cgroup.controllers": "",
    "/sys/fs/cgroup/memory.max": String(64 * 2 ** 30),
    "/sys/fs/cgroup/cpu.max": "800000 100000",
  }));
  assert.deepEqual(r, { ramMb: 1024, vcpus: 1, ramSource: "proc", cpuSource: "proc" });
});

Deno.test("countCpuList() counts ranges and singles", () => {
  assert.equal(countCpuList("0-3,6,8-9\n"), 7);
  assert.equal(countCpuList("0"), 1);
});

Deno.test("parseProcCgroup() splits joined v1 controllers", () => {
  const m = parseProcCgroup("2:cpu,cpuacct:/x\n0::/y\n");
  assert.equal(m.get("cpu"), "/x");
  assert.equal(m.get("cpuacct"), "/x");
  assert.equal(m.get(""), "/y");
});
