/**
 * TLS by default, rotation, authentication and secret hygiene, against real postgres and
 * PgBouncer.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { authCode, MessageReader, startupMessage, text } from "../src/pg/protocol.ts";
import { ok } from "./support/control.ts";
import {
  fileFingerprint,
  makeCa,
  makeLeaf,
  makeSelfSigned,
  servedFingerprint,
} from "./support/certs.ts";
import {
  beyondPgCommand,
  cleanup,
  descendants,
  psql,
  removeRoot,
  startSupervisor,
  tempRoot,
} from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;

Deno.test("TLS: sslmode=require works on 5432 and 5433 with the self-signed certificate", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    for (const port of [pg.port, pg.directPort]) {
      assert.equal(
        await psql(port, "select 1", { password: pg.password, env: { PGSSLMODE: "require" } }),
        "1",
      );
    }
    // SCRAM with channel binding on the direct port (libpq's default over TLS).
    assert.equal(
      await psql(pg.directPort, "select ssl from pg_stat_ssl where pid = pg_backend_pid()", {
        password: pg.password,
        env: { PGSSLMODE: "require", PGCHANNELBINDING: "require" },
      }),
      "t",
    );
    const status = await ok<{ tls: { source: string } }>(pg, "status");
    assert.equal(status.tls.source, "self-signed");
    const key = Deno.statSync(`${pg.pgdata}/beyond/server.key`);
    assert.equal((key.mode ?? 0) & 0o777, 0o600);
    assert.equal((Deno.statSync(`${pg.pgdata}/beyond/server.crt`).mode ?? 0) & 0o777, 0o644);
  } finally {
    await cleanup(pg);
  }
});

Deno.test("TLS: verify-full against a CA placed in the platform directory, on 5432 and 5433", async () => {
  const root = await tempRoot();
  const ca = await makeCa(`${root}/pki`);
  const leaf = await makeLeaf(`${root}/pki`, ca, "leaf");
  Deno.mkdirSync(`${root}/platform`);
  Deno.copyFileSync(leaf.cert, `${root}/platform/cert.pem`);
  Deno.copyFileSync(leaf.key, `${root}/platform/key.pem`);
  Deno.copyFileSync(ca.cert, `${root}/platform/ca.pem`);
  const pg = await startSupervisor({ root, env: { BEYOND_PG_TLS_DIR: `${root}/platform` } });
  try {
    await pg.waitFor(READY);
    for (const port of [pg.port, pg.directPort]) {
      const out = await psql(port, "select 1", {
        host: "localhost",
        password: pg.password,
        env: { PGSSLMODE: "verify-full", PGSSLROOTCERT: ca.cert },
      });
      assert.equal(out, "1");
    }
    assert.match(Deno.readTextFileSync(`${pg.pgdata}/conf.d/06-tls.conf`), /ssl_ca_file = /);
    assert.equal((await ok<{ tls: { source: string } }>(pg, "status")).tls.source, "platform");
  } finally {
    await cleanup(pg);
    await removeRoot(root);
  }
});

Deno.test("TLS: a near-expiry self-signed certificate we made is renewed; a user-managed one never is", async () => {
  const first = await startSupervisor();
  try {
    await first.waitFor(READY);
    assert.equal(await first.stop(), 0);
    const beyond = `${first.pgdata}/beyond`;
    // Plant a certificate that expires in 10 days and claim it as ours (sentinel matches).
    const near = await makeSelfSigned(`${first.root}/near`, "near", 10);
    Deno.copyFileSync(near.cert, `${beyond}/server.crt`);
    Deno.copyFileSync(near.key, `${beyond}/server.key`);
    Deno.chownSync(`${beyond}/server.key`, 101, 104);
    const digest = new Uint8Array(
      await crypto.subtle.digest("SHA-256", Deno.readFileSync(`${beyond}/server.crt`)),
    );
    Deno.writeTextFileSync(
      `${beyond}/.generated.json`,
      JSON.stringify({
        sha256: [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""),
        fingerprint: await fileFingerprint(near.cert),
        notAfter: new Date(Date.now() + 10 * 86400_000).toISOString(),
      }),
    );
    const nearFp = await fileFingerprint(near.cert);
    const second = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
    });
    try {
      await second.waitFor(READY);
      assert.ok(second.lines.some((l) => l.includes("renewing it")));
      const served = await servedFingerprint(second.directPort);
      assert.notEqual(served, nearFp);
      const status = await ok<{ tls: { notAfter: string } }>(second, "status");
      assert.ok(new Date(status.tls.notAfter).getTime() - Date.now() > 300 * 86400_000);
      assert.equal(await second.stop(), 0);
    } finally {
      await cleanup(second);
    }
    // User-managed: a 5-day certificate with the sentinel is used as is, and never replaced.
    const mine = await makeSelfSigned(`${first.root}/mine`, "mine", 5);
    Deno.copyFileSync(mine.cert, `${beyond}/server.crt`);
    Deno.copyFileSync(mine.key, `${beyond}/server.key`);
    Deno.writeTextFileSync(`${beyond}/.user-managed`, "");
    const third = await startSupervisor({
      root: first.root,
      port: first.port,
      directPort: first.directPort,
    });
    try {
      await third.waitFor(READY);
      assert.equal(await servedFingerprint(third.directPort), await fileFingerprint(mine.cert));
      assert.equal(Deno.readTextFileSync(`${beyond}/server.crt`), Deno.readTextFileSync(mine.cert));
      assert.equal(
        (await ok<{ tls: { source: string } }>(third, "status")).tls.source,
        "user-managed",
      );
    } finally {
      await cleanup(third);
    }
  } finally {
    await cleanup(first);
  }
});

Deno.test("TLS rotation: new connections see the new certificate, open sessions survive, a mismatched pair is refused", async () => {
  const root = await tempRoot();
  const ca = await makeCa(`${root}/pki`);
  const a = await makeLeaf(`${root}/pki`, ca, "a");
  const b = await makeLeaf(`${root}/pki`, ca, "b");
  const c = await makeLeaf(`${root}/pki`, ca, "c");
  const platform = `${root}/platform`;
  Deno.mkdirSync(platform);
  const install = (
    pair: { cert: string; key: string },
    parts: ("cert" | "key")[] = ["cert", "key"],
  ) => {
    // As the platform agent does: write beside, then rename(2) into place.
    for (const part of parts) {
      const target = `${platform}/${part}.pem`;
      Deno.copyFileSync(part === "cert" ? pair.cert : pair.key, `${target}.tmp`);
      Deno.renameSync(`${target}.tmp`, target);
    }
  };
  install(a);
  const pg = await startSupervisor({ root, env: { BEYOND_PG_TLS_DIR: platform } });
  const session = postgres({
    host: "127.0.0.1",
    port: pg.directPort,
    user: "postgres",
    password: pg.password,
    ssl: "require",
    max: 1,
  });
  const pooled = postgres({
    host: "127.0.0.1",
    port: pg.port,
    user: "postgres",
    password: pg.password,
    ssl: "require",
    max: 1,
    prepare: false,
  });
  try {
    await pg.waitFor(READY);
    const [before] = await session`select pg_backend_pid() as pid`;
    await pooled`select 1`;
    assert.equal(await servedFingerprint(pg.directPort), await fileFingerprint(a.cert));

    let mark = pg.lines.length;
    install(b);
    await pg.waitFor(/TLS: now using the platform certificate/, 10_000, mark);
    const fpB = await fileFingerprint(b.cert);
    let served5433 = "";
    let served5432 = "";
    for (let i = 0; i < 50 && (served5433 !== fpB || served5432 !== fpB); i++) {
      served5433 = await servedFingerprint(pg.directPort);
      served5432 = await servedFingerprint(pg.port);
      if (served5433 !== fpB || served5432 !== fpB) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(served5433, fpB, "5433 still serves the old certificate");
    assert.equal(served5432, fpB, "5432 still serves the old certificate");
    const [after] = await session`select pg_backend_pid() as pid`;
    assert.equal(after!.pid, before!.pid, "the open session was dropped");
    await pooled`select 1`;

    // Half a rotation: a new certificate with the old key. Refused; B stays in use.
    mark = pg.lines.length;
    install(c, ["cert"]);
    await pg.waitFor(/platform TLS .* not used: .* does not belong to/, 10_000, mark);
    assert.equal(await servedFingerprint(pg.directPort), fpB);
    const status = await ok<{ tls: { problem?: string; fingerprint: string } }>(pg, "status");
    assert.match(status.tls.problem ?? "", /does not belong to/);
    assert.equal(status.tls.fingerprint, fpB);
    // Completing it (the key arrives) is picked up.
    install(c, ["key"]);
    await pg.waitFor(/TLS: now using the platform certificate/, 10_000, mark);
  } finally {
    await session.end({ timeout: 1 }).catch(() => {});
    await pooled.end({ timeout: 1 }).catch(() => {});
    await cleanup(pg);
    await removeRoot(root);
  }
});

/** Start a session without a password and report which auth method the server asks for. */
async function authRequest(port: number): Promise<{ code: number; mechanisms: string[] }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const msg = startupMessage({ user: "postgres", database: "postgres" });
    await conn.write(msg);
    const reader = new MessageReader();
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed");
      reader.push(buf.subarray(0, n));
      const m = reader.next();
      if (m?.type === "R") {
        const code = authCode(m.body);
        return {
          code,
          mechanisms: code === 10 ? text(m.body.subarray(4)).split("\0").filter(Boolean) : [],
        };
      }
      if (m?.type === "E") throw new Error("error before authentication");
    }
  } finally {
    conn.close();
  }
}

Deno.test("auth: no password and wrong password are rejected; only SCRAM is offered (md5-only clients are refused)", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    for (const port of [pg.port, pg.directPort]) {
      await assert.rejects(psql(port, "select 1", { password: "", env: { PGPASSWORD: "" } }));
      await assert.rejects(psql(port, "select 1", { password: "wrong" }), /authentication failed/);
      const req = await authRequest(port);
      assert.equal(req.code, 10, `port ${port} asked for auth method ${req.code}`); // 10 = SASL, never 3/5
      assert.deepEqual(req.mechanisms, ["SCRAM-SHA-256"]);
    }
    assert.doesNotMatch(Deno.readTextFileSync(`${pg.pgdata}/pg_hba.conf`), /\btrust\b/);
  } finally {
    await cleanup(pg);
  }
});

Deno.test("leak scan: the password is in no log line, no child's cmdline or environ, no file we wrote", async () => {
  const first = "Leak-Sentinel-7f3a9c";
  const second = "Rotated-Sentinel-2b8e41";
  const root = await tempRoot();
  const scan = (pg: Awaited<ReturnType<typeof startSupervisor>>, secret: string) => {
    const hits: string[] = [];
    for (const line of pg.lines) if (line.includes(secret)) hits.push(`log: ${line}`);
    for (const pid of descendants(pg.proc.pid)) {
      for (const f of ["cmdline", "environ"]) {
        try {
          if (Deno.readTextFileSync(`/proc/${pid}/${f}`).includes(secret)) {
            hits.push(`/proc/${pid}/${f}`);
          }
        } catch { /* exited */ }
      }
    }
    const walk = (dir: string) => {
      for (const e of Deno.readDirSync(dir)) {
        const p = `${dir}/${e.name}`;
        if (e.isDirectory) walk(p);
        else if (e.isFile && Deno.statSync(p).size < 64 << 20) {
          const bytes = Deno.readFileSync(p);
          if (new TextDecoder("latin1").decode(bytes).includes(secret)) hits.push(`file: ${p}`);
        }
      }
    };
    walk(`${root}/data`);
    walk(`${root}/run`);
    return hits;
  };
  try {
    const a = await startSupervisor({ root, password: first });
    try {
      await a.waitFor(READY);
      await psql(a.port, "select 1", { password: first });
      assert.deepEqual(scan(a, first), []);
      assert.equal(await a.stop(), 0);
    } finally {
      await cleanup(a);
    }
    // A restart with a new password (the change path).
    const b = await startSupervisor({
      root,
      password: second,
      port: a.port,
      directPort: a.directPort,
    });
    try {
      await b.waitFor(READY);
      await psql(b.port, "select 1", { password: second });
      await psql(b.directPort, "select 1", { password: second });
      assert.deepEqual([...scan(b, first), ...scan(b, second)], []);
      assert.equal(await b.stop(), 0);
    } finally {
      await cleanup(b);
    }
  } finally {
    await removeRoot(root);
  }
});

Deno.test("revoked permissions: archive cannot spawn a process or load a library through FFI", async () => {
  const { cmd, args } = beyondPgCommand(["permissions", "--check", "archive"]);
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.match(text, /^run: denied/m);
  assert.match(text, /^ffi: denied/m);
  const sup = beyondPgCommand(["permissions", "--check", "supervisor"]);
  const control = new TextDecoder().decode(
    (await new Deno.Command(sup.cmd, { args: sup.args, stdout: "piped" }).output()).stdout,
  );
  assert.match(control, /^run: allowed/m);
});

Deno.test("non-ASCII passwords: our SCRAM verifiers accept libpq's SASLprep of the same text", async () => {
  // U+200B is both a space and "mapped to nothing"; U+00AD vanishes; ß and ligatures go
  // through NFKC; a control character or mixed bidi makes SASLprep fail (raw bytes used).
  const pg = await startSupervisor({ password: "pä\u200bss\u00ADwörd" });
  try {
    await pg.waitFor(READY);
    for (const port of [pg.port, pg.directPort]) {
      assert.equal(await psql(port, "select 1", { password: pg.password }), "1");
    }
    const { buildVerifier } = await import("../src/auth/scram.ts");
    const passwords = ["\ufb01x\u2168", "é\u0007", "\u0627b\u0628", "\u00a0ß\u3000", "😀"];
    for (const [i, pw] of passwords.entries()) {
      const role = `u${i}`;
      await psql(
        pg.directPort,
        `create role ${role} login password '${await buildVerifier(pw)}'`,
        { password: pg.password },
      );
      assert.equal(
        await psql(pg.directPort, "select current_user", { user: role, password: pw }),
        role,
        JSON.stringify(pw),
      );
    }
  } finally {
    await cleanup(pg);
  }
});
