import assert from "node:assert/strict";
import { getrlimit, RLIMIT_NOFILE, setrlimit } from "../../ffi/mod.ts";
import { setLogWriter } from "../util/log.ts";
import { ControlClient } from "./client.ts";
import { makeDispatch } from "./dispatch.ts";
import { ControlServer } from "./server.ts";
import { RootTree } from "../fs/tree.ts";

Deno.test("ControlServer keeps its Unix listener through EMFILE and answers once descriptors are free", async () => {
  const lines: string[] = [];
  const previousWriter = setLogWriter((l) => lines.push(l));
  const dir = await Deno.makeTempDir();
  const path = `${dir}/control/control.sock`;
  const server = new ControlServer(makeDispatch({
    ping: { summary: "test", timeoutMs: 1000, run: () => Promise.resolve({ pong: true }) },
  }));
  server.listenUnix(RootTree.check(dir, "test"), path, { dirMode: 0o700 });
  const before = getrlimit(RLIMIT_NOFILE);
  const held: Deno.FsFile[] = [];
  let client: ControlClient | undefined;
  try {
    const open = [...Deno.readDirSync("/proc/self/fd")].length;
    setrlimit(RLIMIT_NOFILE, { soft: open + 16, hard: before.hard });
    try {
      for (;;) held.push(Deno.openSync("/dev/null"));
    } catch { /* EMFILE: the table is full */ }
    held.pop()!.close(); // room for the client's socket only
    client = await ControlClient.unix(path);
    const answer = client.call("ping", {}, 10_000);
    await new Promise((r) => setTimeout(r, 400)); // accept fails with EMFILE, backs off
    for (const f of held.splice(0)) f.close();
    setrlimit(RLIMIT_NOFILE, before);
    const res = await answer;
    assert.ok(res.ok, JSON.stringify(res));
    assert.deepEqual(res.result, { pong: true });
    assert.ok(
      lines.some((l) => /control .*accept failed \(Too many open files/.test(l)),
      lines.join("\n"),
    );
    // A later connection is served as usual.
    const again = await ControlClient.unix(path);
    assert.ok((await again.call("ping", {})).ok);
    again.close();
  } finally {
    for (const f of held) f.close();
    setrlimit(RLIMIT_NOFILE, before);
    client?.close();
    server.close();
    setLogWriter(previousWriter);
    await Deno.remove(dir, { recursive: true });
  }
});
