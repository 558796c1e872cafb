/**
 * `beyond-pg control <command> [--json] [--socket PATH] [--arg key=value ...]`: talk to a
 * running supervisor over its Unix socket. Human-readable by default; --json prints the
 * response as is. Exit 0 on success, 1 on a command error, 2 when it cannot connect.
 */
import { ControlClient } from "../rpc/client.ts";
import type { Response } from "../rpc/codec.ts";
import { errorMessage } from "../util/errors.ts";
import { controlSocketIn, runDirFrom } from "../settings/defaults.ts";

function usage(): string {
  return [
    "usage: beyond-pg control <command> [--json] [--socket PATH | --vsock CID:PORT] [--arg key=value ...]",
    "commands: health, status, checkpoint, reload, drain, resume, hot-set, backup",
  ].join("\n");
}

function human(value: unknown, indent = ""): string {
  if (value === null || typeof value !== "object") return `${value}`;
  if (Array.isArray(value)) {
    if (value.length === 0) return "(none)";
    return value.map((v) => `\n${indent}- ${human(v, indent + "  ")}`).join("");
  }
  return Object.entries(value as Record<string, unknown>).map(([k, v]) => {
    const text = human(v, indent + "  ");
    return `\n${indent}${k}: ${text.startsWith("\n") ? text : text}`;
  }).join("");
}

export async function main(args: string[]): Promise<number> {
  const json = args.includes("--json");
  const socketIdx = args.indexOf("--socket");
  const runDir = runDirFrom();
  const vsockIdx = args.indexOf("--vsock");
  const socket = socketIdx >= 0
    ? args[socketIdx + 1]!
    : Deno.env.get("BEYOND_PG_CONTROL_SOCKET") || controlSocketIn(runDir);
  const cmdArgs: Record<string, unknown> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === "--json") continue;
    if (a === "--socket" || a === "--vsock") {
      i++;
      continue;
    }
    if (a === "--arg") {
      const [k, ...v] = (args[++i] ?? "").split("=");
      const raw = v.join("=");
      cmdArgs[k!] = /^-?\d+(\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw === "true"
        ? true
        : raw === "false"
        ? false
        : raw;
      continue;
    }
    positional.push(a);
  }
  const cmd = positional[0];
  if (!cmd) {
    console.error(usage());
    return 2;
  }
  let client: ControlClient;
  const vsock = vsockIdx >= 0 ? args[vsockIdx + 1]?.match(/^(\d+):(\d+)$/) : undefined;
  if (vsockIdx >= 0 && !vsock) {
    console.error("beyond-pg control: --vsock needs CID:PORT, e.g. --vsock 1:5000");
    return 2;
  }
  const where = vsock ? `vsock ${vsock[1]}:${vsock[2]}` : socket;
  try {
    client = vsock
      ? await ControlClient.ffi({ family: "vsock", cid: Number(vsock[1]), port: Number(vsock[2]) })
      : await ControlClient.unix(socket);
  } catch (error) {
    console.error(
      `beyond-pg control: cannot connect to ${where} (${
        errorMessage(error)
      }); is the supervisor running? set --socket, --vsock or BEYOND_PG_RUN_DIR`,
    );
    return 2;
  }
  let res: Response;
  try {
    res = await client.call(cmd, cmdArgs, 15 * 60_000);
  } finally {
    client.close();
  }
  if (json) console.log(JSON.stringify(res, null, 2));
  else if (res.ok) console.log(`${cmd}: ok${human(res.result, "  ")}`);
  else console.error(`${cmd}: ${res.error.code}: ${res.error.message}`);
  return res.ok ? 0 : 1;
}
