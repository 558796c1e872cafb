/** PURE: what PID 1 reads from the kernel: the command line, the mount table, sysctl files. */

/** /proc/cmdline → key=value pairs (last wins) and bare flags. Quotes group words. */
export function parseCmdline(text: string): { values: Map<string, string>; flags: Set<string> } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const words = text.trim().match(/(?:[^\s"]+|"[^"]*")+/g) ?? [];
  for (const word of words) {
    const unquoted = word.replaceAll('"', "");
    const eq = unquoted.indexOf("=");
    if (eq > 0) values.set(unquoted.slice(0, eq), unquoted.slice(eq + 1));
    else flags.add(unquoted);
  }
  return { values, flags };
}

/** /proc/self/mounts → mount points. */
export function mountPoints(text: string): Set<string> {
  return new Set(
    text.split("\n").map((l) => l.split(" ")[1]).filter((p): p is string => !!p).map((p) =>
      p.replace(/\\040/g, " ")
    ),
  );
}

/** A sysctl.d file → [key, value] in order (comments and blank lines ignored). */
export function parseSysctl(text: string): [string, string][] {
  const out: [string, string][] = [];
  for (const raw of text.split("\n")) {
    const line = raw.replace(/[#;].*$/, "").trim();
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    out.push([line.slice(0, eq).trim().replace(/^-/, ""), line.slice(eq + 1).trim()]);
  }
  return out;
}

/** net.core.somaxconn → /proc/sys/net/core/somaxconn */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.replaceAll(".", "/")}`;
}

/**
 * The kernel's ip= parameter (client:server:gw:netmask:hostname:device:autoconf), for kernels
 * built without CONFIG_IP_PNP that leave it to init.
 */
export function parseIpParam(
  value: string,
): { address: string; prefix: number; gateway?: string; device: string } | undefined {
  const [client, , gw, mask, , dev] = value.split(":");
  if (!client || !/^\d+\.\d+\.\d+\.\d+$/.test(client)) return undefined;
  const prefix = mask
    ? mask.split(".").reduce(
      (n, o) => n + (Number(o) >>> 0).toString(2).replace(/0/g, "").length,
      0,
    )
    : 24;
  return { address: client, prefix, ...(gw ? { gateway: gw } : {}), device: dev || "eth0" };
}

/**
 * ipv6=ADDR/PREFIX[,GATEWAY] (the VM's address) and ipv6_ext=ADDR/PREFIX (an additional,
 * externally routed address): the design's IPv6 cmdline parameters.
 */
export function parseIpv6(values: Map<string, string>): { addresses: string[]; gateway?: string } {
  const addresses: string[] = [];
  let gateway: string | undefined;
  const main = values.get("ipv6");
  if (main) {
    const [addr, gw] = main.split(",");
    if (addr) addresses.push(addr.includes("/") ? addr : `${addr}/64`);
    if (gw) gateway = gw;
  }
  const ext = values.get("ipv6_ext");
  if (ext) addresses.push(ext.includes("/") ? ext : `${ext}/128`);
  return { addresses, ...(gateway ? { gateway } : {}) };
}

/** resolv.conf: the IPv6 gateway when there is one, then 8.8.8.8. */
export function renderResolvConf(ipv6Gateway: string | undefined): string {
  return [
    "# written by beyond-pg (PID 1)",
    ...(ipv6Gateway ? [`nameserver ${ipv6Gateway}`] : []),
    "nameserver 8.8.8.8",
    "",
  ].join("\n");
}
