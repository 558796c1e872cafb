import assert from "node:assert/strict";
import { ErrnoError } from "./errno.ts";
import { ffiConnect, FfiListener } from "./socket.ts";
import {
  AF_VSOCK,
  decodePeer,
  getrlimit,
  kill,
  RLIMIT_NOFILE,
  setrlimit,
  waitpidNoHang,
} from "./libc.ts";

// AF_VSOCK cannot be exercised on this machine (and CID 2 must never be dialled here); the
// FFI socket code is the same for AF_UNIX, which these tests use. vsock itself is tested in
// the microVM (tests/e2e).

Deno.test("FfiListener/ffiConnect: accept, read and write over AF_UNIX through FFI", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const listener = new FfiListener({ family: "unix", path });
  try {
    const accepted = listener.accept();
    const client = await ffiConnect({ family: "unix", path });
    const server = (await accepted)!;
    assert.deepEqual(server.peer, { family: "unix" });
    await client.writeAll(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(16);
    const n = await server.read(buf);
    assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "ping");
    client.close();
    assert.equal(await server.read(buf), null); // EOF
    server.close();
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ffiConnect() to a missing socket fails with the errno name", async () => {
  await assert.rejects(
    ffiConnect({ family: "unix", path: "/nonexistent/x.sock" }),
    (e: Error) =>
      e instanceof ErrnoError && /connect \/nonexistent\/x\.sock failed: ENOENT/.test(e.message),
  );
});

Deno.test("FfiListener.accept() returns null after close, without spinning", async () => {
  const dir = await Deno.makeTempDir();
  const listener = new FfiListener({ family: "unix", path: `${dir}/s.sock` });
  const cpuTicks = () => {
    const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]!.split(" ");
    return Number(f[11]) + Number(f[12]); // utime + stime, in clock ticks (10 ms)
  };
  const pending = listener.accept();
  const before = cpuTicks();
  await new Promise((r) => setTimeout(r, 1000));
  const used = cpuTicks() - before;
  listener.close();
  assert.equal(await pending, null);
  assert.ok(used <= 5, `waiting for a connection used ${used * 10} ms of CPU in 1 s`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("kill(pid, 0) and waitpidNoHang() on a child we own", async () => {
  const child = new Deno.Command("sleep", { args: ["5"] }).spawn();
  kill(child.pid, 0); // exists
  kill(child.pid, 9);
  const status = await child.status;
  assert.equal(status.signal, "SIGKILL");
  assert.equal(waitpidNoHang(-1), undefined); // Deno reaped it; nothing left for us
});

Deno.test("decodePeer() reads the CID and port of a vsock peer", () => {
  const sa = new Uint8Array(128);
  const v = new DataView(sa.buffer);
  v.setUint16(0, AF_VSOCK, true);
  v.setUint32(4, 1234, true);
  v.setUint32(8, 2, true);
  assert.deepEqual(decodePeer(sa), { family: "vsock", cid: 2, port: 1234 });
});

Deno.test("getrlimit()/setrlimit() round-trip RLIMIT_NOFILE", () => {
  const before = getrlimit(RLIMIT_NOFILE);
  assert.ok(before.soft > 0 && before.soft <= before.hard);
  try {
    setrlimit(RLIMIT_NOFILE, { soft: before.soft - 1, hard: before.hard });
    assert.deepEqual(getrlimit(RLIMIT_NOFILE), { soft: before.soft - 1, hard: before.hard });
  } finally {
    setrlimit(RLIMIT_NOFILE, before);
  }
  assert.throws(
    () => setrlimit(RLIMIT_NOFILE, { soft: before.hard + 1, hard: before.hard }),
    (e: Error) => e instanceof ErrnoError && /setrlimit 7 .* failed: EINVAL/.test(e.message),
  );
});
