/**
 * Least privilege with Deno's permission model: each subcommand keeps only what it uses and
 * revokes the rest at start, before its code is loaded. The build grants all (see
 * scripts/build.ts); this table narrows it per command. `beyond-pg permissions` prints it.
 *
 * Deno lets a process read /proc and /sys only while it holds every permission, so commands
 * that must (supervisor: mounts, readiness, reaping; boot, seed: RAM and vCPUs from cgroups
 * and /proc; restore: it boots the supervisor path) keep them all.
 */

export const ALL = ["read", "write", "net", "env", "run", "ffi", "sys"] as const;
export type Perm = typeof ALL[number];

export interface Profile {
  keep: readonly Perm[];
  why: string;
}

export const profiles: Record<string, Profile> = {
  supervisor: {
    keep: ALL,
    why: "PID 1: mounts and vsock (ffi), spawns postgres/PgBouncer (run), metadata, HTTP (net)",
  },
  boot: {
    keep: ALL,
    why: "initdb and config; reads RAM and vCPUs from /proc and cgroups (Deno: all or nothing)",
  },
  seed: {
    keep: ALL,
    why: "initdb and a temporary server; reads /proc and cgroups (Deno: all or nothing)",
  },
  archive: {
    keep: ["read", "write", "net", "env", "sys"],
    why: "reads a WAL segment, talks to the supervisor or S3; never spawns, never ffi",
  },
  "restore-wal": {
    keep: ["read", "write", "net", "env", "sys"],
    why: "fetches a WAL file from S3 into pg_wal; never spawns, never ffi",
  },
  backup: {
    keep: ["read", "write", "net", "env", "run", "sys"],
    why: "runs pg_basebackup, uploads to S3; no ffi",
  },
  verify: {
    keep: ALL,
    why:
      "reads backups and WAL back from S3, records the time in the run dir; settings as the supervisor reads them (/proc)",
  },
  backups: {
    keep: ALL,
    why:
      "lists or prunes objects in S3; without a running supervisor, settings as it reads them (/proc)",
  },
  restore: { keep: ALL, why: "fetches a base backup, then the supervisor's boot path (/proc)" },
  control: {
    keep: ["read", "write", "net", "env", "ffi"],
    why: "a Unix socket (read, write, net to Deno) or vsock (ffi) client",
  },
  "wal-sink": {
    keep: ["read", "write", "net", "env", "run", "sys"],
    why: "runs pg_receivewal, serves WAL over HTTP(S), prunes its directory; no ffi",
  },
  "log-receiver": {
    keep: ["read", "write", "net", "env", "ffi"],
    why: "listens on vsock (ffi) and prints log frames",
  },
  permissions: { keep: ["read", "env"], why: "prints this table" },
  settings: { keep: [], why: "prints the settings table (no values: reads no environment)" },
  warm: { keep: ["read"], why: "loads code only: lists the bundle's chunks (an image build step)" },
  version: { keep: [], why: "prints a string" },
  help: { keep: [], why: "prints usage" },
};

/** Revoke everything the command does not keep (unknown commands keep nothing). */
export function applyProfile(command: string): void {
  const keep = new Set<Perm>(profiles[command]?.keep ?? []);
  for (const name of ALL) {
    if (!keep.has(name)) {
      try {
        Deno.permissions.revokeSync({ name });
      } catch { /* already denied */ }
    }
  }
}

export function matrix(): string {
  const names = Object.keys(profiles);
  const width = Math.max(...names.map((n) => n.length));
  const header = `${"command".padEnd(width)}  ${ALL.map((p) => p.padEnd(5)).join(" ")}  why`;
  const rows = names.map((n) => {
    const keep = new Set(profiles[n]!.keep);
    return `${n.padEnd(width)}  ${
      ALL.map((p) => (keep.has(p) ? "yes" : "-").padEnd(5)).join(" ")
    }  ${profiles[n]!.why}`;
  });
  return [header, ...rows].join("\n");
}
