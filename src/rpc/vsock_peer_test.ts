import assert from "node:assert/strict";
import { RefusalLog, vsockPeerAllowed } from "./vsock_peer.ts";

Deno.test("vsockPeerAllowed() serves only the configured CID (the host by default)", () => {
  assert.ok(vsockPeerAllowed({ family: "vsock", cid: 2, port: 1234 }, 2));
  assert.ok(!vsockPeerAllowed({ family: "vsock", cid: 1, port: 1234 }, 2), "guest loopback");
  assert.ok(!vsockPeerAllowed({ family: "vsock", cid: 3, port: 1234 }, 2), "another guest");
  assert.ok(vsockPeerAllowed({ family: "vsock", cid: 1, port: 1234 }, 1), "tests in the VM");
  assert.ok(!vsockPeerAllowed({ family: "unix" }, 2));
  assert.ok(!vsockPeerAllowed(undefined, 2), "unknown peer: refused");
});

Deno.test("RefusalLog reports the first refusal, then at most once a minute with the count", () => {
  const r = new RefusalLog({ port: 5000, allowedCid: 2 });
  const peer = { family: "vsock" as const, cid: 1, port: 999 };
  assert.match(
    r.refused(peer, 0)!,
    /port 5000: refused a connection from CID 1 \(1 refused .*only CID 2 is served, set BEYOND_PG_CONTROL_VSOCK_PEER_CID/,
  );
  for (let i = 1; i < 500; i++) assert.equal(r.refused(peer, i * 100), undefined);
  assert.match(r.refused(peer, 60_000)!, /\(500 refused since the last such line\)/);
});
