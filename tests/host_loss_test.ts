/**
 * Tier 1.5 against real postgres, PgBouncer and pg_receivewal on loopback (issue 14): a primary
 * with two WAL sinks (`ANY 1`) loses its host — its volume comes back as it was 1–5 s earlier —
 * and boots with every acknowledged commit, fetched from a sink before postgres starts. The
 * short variant runs here (2 trials, a quorum trial with one sink killed just before the loss,
 * a sink restarted mid-stream, and the same loss without sinks); bench/wal_sink.ts runs 10.
 */
import assert from "node:assert/strict";
import { ok } from "./support/control.ts";
import {
  cleanup,
  freePort,
  type Instance,
  killTree,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";
import { hostLossTrial } from "./support/host_loss.ts";
import { READY, replEnv, replStatus, streaming, until } from "./support/replication.ts";
import { type Sink, sinkEnv, sinkListing, startSink } from "./support/sink.ts";

function lcg(seed: number) {
  let s = seed;
  return () => ((s = (s * 48271) % 2147483647) / 2147483647);
}

/** Two sinks (`sinkEnv` for both) and a primary with `ANY 1` of them, not yet ready. */
async function primaryWithTwoSinks(env: Record<string, string> = {}) {
  const directPort = freePort();
  const s1 = await startSink("s1", directPort, { env });
  const s2 = await startSink("s2", directPort, { env });
  const root = await tempRoot();
  const restart = {
    root,
    port: freePort(),
    directPort,
    httpPort: freePort(),
    env: replEnv(sinkEnv([s1, s2])),
  };
  return { s1, s2, root, restart, directPort, p: await startSupervisor(restart) };
}

Deno.test("host loss with 2 WAL sinks (ANY 1): every acknowledged commit survives; quorum; a sink resumes from its slot", async () => {
  const start = await primaryWithTwoSinks();
  const { s2, root, restart, directPort } = start;
  let p: Instance = start.p;
  const rand = lcg(14);
  let s2b: Sink | undefined;
  try {
    await p.waitFor(READY, 60_000);
    await Promise.all([streaming(p, "s1"), streaming(p, "s2")]);
    await psql(p.directPort, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)", {
      password: p.password,
    });
    assert.equal(
      await psql(p.directPort, "SHOW synchronous_standby_names", { password: p.password }),
      "ANY 1 (s1, s2)",
    );

    for (let i = 1; i <= 2; i++) {
      const t = await hostLossTrial(p, {
        rand,
        restart,
        log: (l) => console.log(`trial ${i}: ${l}`),
      });
      p = t.next;
      console.log(
        `trial ${i}: ${t.acked} acknowledged, ${t.lost.length} lost; gap fetch ${
          JSON.stringify(t.gapFetch)
        }`,
      );
      assert.deepEqual(t.lost, [], `trial ${i}: acknowledged ids lost`);
      assert.equal(t.gapFetch?.["outcome"], "fetched");
      await Promise.all([streaming(p, "s1"), streaming(p, "s2")]);
    }

    // Quorum: s2 dies just before the loss; s1 alone has every commit.
    const q = await hostLossTrial(p, {
      rand,
      restart,
      beforeLoss: () => {
        killTree(s2);
        return Promise.resolve();
      },
    });
    p = q.next;
    console.log(
      `quorum trial: ${q.acked} acknowledged, ${q.lost.length} lost; ${JSON.stringify(q.gapFetch)}`,
    );
    assert.deepEqual(q.lost, []);
    assert.match(String(q.gapFetch?.["warning"]), /only 1 of 2 WAL sink\(s\) answered/);
    const st = await ok<{ walSinks: { gapFetch: { sink: string } } }>(p, "status");
    assert.equal(st.walSinks.gapFetch.sink, "s1");

    // s2 comes back on its directory and resumes from its slot: no hole, the same bytes.
    s2b = await startSink("s2", directPort, { root: s2.root, sinkPort: s2.sinkPort });
    await streaming(p, "s2");
    await psql(
      p.directPort,
      "INSERT INTO acks SELECT g, repeat('z', 500) FROM generate_series(10000000, 10030000) g",
      {
        password: p.password,
      },
    );
    const pgLsn = await psql(p.directPort, "SELECT pg_current_wal_flush_lsn()", {
      password: p.password,
    });
    await until("s2 caught up", async () => {
      const l = await sinkListing(s2b!);
      return l.end !== null && lsn(l.end) >= lsn(pgLsn);
    });
    const l = await sinkListing(s2b);
    const nums = l.segments.map((s) => parseInt(s.name.slice(16), 16));
    for (let i = 1; i < nums.length; i++) assert.equal(nums[i], nums[i - 1]! + 1, "no hole");
    for (const s of l.segments.filter((x) => !x.partial)) {
      const mine = `${p.root}/data/wal/${s.name}`;
      try {
        const a = await Deno.readFile(mine);
        const b = await Deno.readFile(`${s2b.dir}/${s.name}`);
        assert.ok(a.length === b.length && a.every((x, k) => x === b[k]), `${s.name} differs`);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e; // recycled on the primary already
      }
    }
    assert.equal(await p.stop(), 0);
  } finally {
    await cleanup();
    await removeRoot(root);
  }
});

function lsn(text: string): bigint {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
}

Deno.test("sinks acknowledging on write (BEYOND_PG_SINK_ACK=write): a host loss loses nothing; the flush LSN follows; a primary at `on` is told in one line", async () => {
  const start = await primaryWithTwoSinks({ BEYOND_PG_SINK_ACK: "write" });
  const { s1, s2, root, restart } = start;
  let p: Instance = start.p;
  const sinkStatus = async (s: Sink) =>
    await (await fetch(`${s.url}/v1/status`)).json() as {
      ack: string;
      flushLsn: string | null;
      lagBytes: number | null;
      reason?: string;
    };
  try {
    await p.waitFor(READY, 60_000);
    await Promise.all([streaming(p, "s1"), streaming(p, "s2")]);
    for (const s of [s1, s2]) {
      const env = s.pids().map((pid) => {
        try {
          const cmd = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
          return cmd.includes("pg_receivewal") ? Deno.readTextFileSync(`/proc/${pid}/environ`) : "";
        } catch {
          return "";
        }
      }).find((e) => e);
      assert.match(env ?? "", /LD_PRELOAD=[^\0]*libeatmydata/, `${s.name}: pg_receivewal's env`);
    }
    await psql(p.directPort, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)", {
      password: p.password,
    });
    const t = await hostLossTrial(p, { rand: lcg(15), restart });
    p = t.next;
    console.log(`ack=write trial: ${t.acked} acknowledged, ${t.lost.length} lost`);
    assert.deepEqual(t.lost, [], "acknowledged ids lost");
    assert.equal(t.gapFetch?.["outcome"], "fetched");
    await Promise.all([streaming(p, "s1"), streaming(p, "s2")]);

    await psql(p.directPort, "INSERT INTO acks VALUES (-1, 'after')", { password: p.password });
    const at = lsn(
      await psql(p.directPort, "SELECT pg_current_wal_flush_lsn()", { password: p.password }),
    );
    await until("s1's flushed WAL reaches the primary's", async () => {
      const st = await sinkStatus(s1);
      return st.ack === "write" && st.flushLsn !== null && lsn(st.flushLsn) >= at;
    });
    assert.doesNotMatch((await sinkStatus(s1)).reason ?? "", /BEYOND_PG_SINK_ACK/);
    await ok(p, "set-sync-standbys", { standbys: "ANY 1 (s1, s2)", level: "on" });
    await until(
      "s1 says the primary's level does not fit",
      async () => /BEYOND_PG_SINK_ACK=flush/.test((await sinkStatus(s1)).reason ?? ""),
      25_000,
      500,
    );
    console.log(`s1: ${(await sinkStatus(s1)).reason}`);
    // The same probe (one psql: IDENTIFY_SYSTEM, then SHOW) gives the primary's position.
    assert.equal(typeof (await sinkStatus(s1)).lagBytes, "number");
    assert.equal(await p.stop(), 0);
  } finally {
    await cleanup();
    await removeRoot(root);
  }
});

Deno.test("host loss without sinks loses the commits after the copy (the window Tier 1.5 closes)", async () => {
  const root = await tempRoot();
  const restart = { root, port: freePort(), directPort: freePort(), httpPort: freePort() };
  let p = await startSupervisor(restart);
  try {
    await p.waitFor(READY, 60_000);
    await psql(p.directPort, "CREATE TABLE acks (id bigint PRIMARY KEY, pad text)", {
      password: p.password,
    });
    const t = await hostLossTrial(p, { rand: lcg(7), restart });
    p = t.next;
    console.log(
      `no sinks: ${t.acked} acknowledged, ${t.lost.length} lost after ${Math.round(t.rewindMs)} ms`,
    );
    assert.ok(t.lost.length > 0, "without a sink the rewound volume must miss commits");
  } finally {
    await cleanup();
    await removeRoot(root);
  }
});

Deno.test("WAL sink bad inputs: a bad token, an unknown sink, another cluster's sink, a full disk — one line each", async () => {
  const directPort = freePort();
  const s1 = await startSink("s1", directPort);
  const ghost = { name: "s9", url: `http://127.0.0.1:${freePort()}` } as Sink;
  const root = await tempRoot();
  const base = { root, port: freePort(), directPort, httpPort: freePort() };
  let p = await startSupervisor({ ...base, env: replEnv(sinkEnv([s1])) });
  try {
    await p.waitFor(READY, 60_000);
    await streaming(p, "s1");
    // The API wants the token.
    const res = await fetch(`${s1.url}/v1/wal`, { headers: { authorization: "Bearer nope" } });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.equal((await sinkListing(s1)).systemIdentifier !== null, true);
    assert.equal(await p.stop(), 0);

    // A wrong token, and a sink nobody runs: booted anyway, loudly, with the reasons.
    p = await startSupervisor({
      ...base,
      env: replEnv({
        ...sinkEnv([s1, ghost]),
        BEYOND_PG_WAL_SINK_TOKEN: "wrong-token-0123456789",
      }),
    });
    await p.waitFor(READY, 60_000);
    const st = await ok<
      { walSinks: { gapFetch: { outcome: string; refused: string[]; warning: string } } }
    >(
      p,
      "status",
    );
    assert.match(
      st.walSinks.gapFetch.refused.join("\n"),
      /sink s1: .* refused the token \(401\); set BEYOND_PG_WAL_SINK_TOKEN/,
    );
    assert.match(st.walSinks.gapFetch.warning, /no WAL sink answered within 4 s/);
    assert.ok(p.lines.some((l) => /gap fetch: sink s9: .* does not answer/.test(l)));
    assert.equal(await p.stop(), 0);

    // Another cluster's sink: refused (system identifier), nothing placed.
    const otherDirect = freePort();
    const x = await startSink("x1", otherDirect);
    const other = await startSupervisor({ directPort: otherDirect, env: replEnv(sinkEnv([x])) });
    await other.waitFor(READY, 60_000);
    await streaming(other, "x1");
    await until("x1 holds WAL", async () => (await sinkListing(x)).systemIdentifier !== null);
    p = await startSupervisor({ ...base, env: replEnv(sinkEnv([{ ...x, name: "s1" } as Sink])) });
    await p.waitFor(READY, 60_000);
    const st2 = await ok<{ walSinks: { gapFetch: { outcome: string; refused: string[] } } }>(
      p,
      "status",
    );
    assert.equal(st2.walSinks.gapFetch.outcome, "refused");
    assert.match(
      st2.walSinks.gapFetch.refused.join("\n"),
      /another cluster's WAL \(system identifier/,
    );
    assert.equal(await p.stop(), 0);
    assert.equal(await other.stop(), 0);
  } finally {
    await cleanup();
    await removeRoot(root);
  }
});

Deno.test("a WAL sink on a full disk says so in one line, and the primary's commits wait for it", async () => {
  const directPort = freePort();
  const root = await tempRoot();
  const s1 = await startSink("s1", directPort, {
    root,
    wrap: [
      "unshare",
      "-m",
      "--propagation",
      // In a test lane the chroot's root is no mount point; the lane's namespace is private.
      Deno.env.get("BEYOND_TEST_LANE") ? "unchanged" : "private",
      "sh",
      "-c",
      'mkdir -p "$0" && mount -t tmpfs -o size=20m,mode=0755 tmpfs "$0" && exec "$@"',
      `${root}/tiny`,
    ],
    env: { BEYOND_PG_SINK_DIR: `${root}/tiny/wal` },
  });
  const p = await startSupervisor({ directPort, env: replEnv(sinkEnv([s1])) });
  try {
    await p.waitFor(READY, 60_000);
    await streaming(p, "s1");
    // ~40 MB of WAL: the second segment does not fit in 20 MB.
    const big = psql(
      p.directPort,
      "CREATE TABLE big AS SELECT g, repeat('w', 1000) AS pad FROM generate_series(1, 40000) g",
      { password: p.password },
    ).catch((e) => String(e));
    await until("the sink reports a full disk", async () => {
      const r = await fetch(`${s1.url}/v1/status`);
      const st = await r.json();
      return st.diskFull === true &&
        /disk full: .*No space left on device; free space in .*BEYOND_PG_SINK_KEEP_MB/.test(
          st.reason,
        );
    }, 60_000);
    await until("the primary says commits wait", async () => {
      const s = await replStatus(p);
      return /commits wait: 0 of ANY 1 \(s1\) connected/.test(s.sync?.problem ?? "");
    }, 30_000);
    const ready = await fetch(`http://127.0.0.1:${p.httpPort}/readyz`);
    assert.equal(ready.status, 503);
    assert.match(await ready.text(), /commits wait/);
    void big;
  } finally {
    await cleanup();
    await removeRoot(root);
  }
});
