import assert from "node:assert/strict";
import {
  mountPoints,
  parseCmdline,
  parseIpParam,
  parseIpv6,
  parseSysctl,
  renderResolvConf,
  sysctlPath,
} from "./parse.ts";

Deno.test("parseCmdline() splits values and flags, honouring quotes", () => {
  const c = parseCmdline(
    'console=ttyS0 root=/dev/vda rw init=/sbin/init beyond.note="a b" quiet\n',
  );
  assert.equal(c.values.get("root"), "/dev/vda");
  assert.equal(c.values.get("beyond.note"), "a b");
  assert.ok(c.flags.has("rw") && c.flags.has("quiet"));
});

Deno.test("mountPoints() reads /proc/self/mounts", () => {
  const m = mountPoints(
    "proc /proc proc rw 0 0\n/dev/vdb /var/lib/postgresql/15 ext4 rw 0 0\nx /a\\040b tmpfs rw 0 0\n",
  );
  assert.deepEqual([...m], ["/proc", "/var/lib/postgresql/15", "/a b"]);
});

Deno.test("parseSysctl() keeps order and skips comments", () => {
  assert.deepEqual(parseSysctl("# c\nvm.swappiness = 10\n\n-net.core.somaxconn=1024 # x\n"), [
    ["vm.swappiness", "10"],
    ["net.core.somaxconn", "1024"],
  ]);
  assert.equal(sysctlPath("fs.aio-max-nr"), "/proc/sys/fs/aio-max-nr");
});

Deno.test("parseIpParam() reads the kernel's ip= form", () => {
  assert.deepEqual(parseIpParam("169.254.169.15::169.254.169.2:255.255.255.0::eth0:off"), {
    address: "169.254.169.15",
    prefix: 24,
    gateway: "169.254.169.2",
    device: "eth0",
  });
  assert.equal(parseIpParam("dhcp"), undefined);
});

Deno.test("parseIpv6() reads ipv6= and ipv6_ext=; resolv.conf prefers the IPv6 gateway", () => {
  const v = parseIpv6(new Map([["ipv6", "fd00::5/64,fd00::1"], ["ipv6_ext", "2001:db8::5"]]));
  assert.deepEqual(v, { addresses: ["fd00::5/64", "2001:db8::5/128"], gateway: "fd00::1" });
  assert.equal(
    renderResolvConf("fd00::1"),
    "# written by beyond-pg (PID 1)\nnameserver fd00::1\nnameserver 8.8.8.8\n",
  );
  assert.equal(renderResolvConf(undefined).includes("fd00"), false);
});
