import assert from "node:assert/strict";
import { quoteConfValue } from "./conf_file.ts";
import { parseDescribeConfig } from "./gate.ts";
import { renderHba, renderIdent } from "./hba.ts";
import { parseManifest } from "./manifest.ts";
import { planConfig } from "./plan.ts";
import { compareVersions, maxClientConn, renderAuthFile, renderPgbouncerIni } from "./pgbouncer.ts";
import { INCLUDE_MARKER, withIncludeDir } from "./postgresql_conf.ts";
import { allSettings15, capsFixture, planInputFixture, settingsFixture } from "./testing.ts";

function file(plan: ReturnType<typeof planConfig>, suffix: string): string {
  const f = plan.files.find((x) => x.path.endsWith(suffix));
  assert.ok(f, `no planned file ending in ${suffix}`);
  return f.content;
}

/** name → rendered value, from a conf file's text. */
function settingsOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = line.match(/^([a-z_.]+) = (.*)$/);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

Deno.test("planConfig() 00-beyond.conf carries every setting of the spec's Configuration section", () => {
  const conf = settingsOf(file(planConfig(planInputFixture()), "00-beyond.conf"));
  const expected: Record<string, string> = {
    listen_addresses: "'127.0.0.1'",
    port: "5433",
    unix_socket_directories: "'/var/run/postgresql'",
    log_destination: "'stderr'",
    logging_collector: "off",
    log_line_prefix: "'%m [%p] %q[%a] db=%d,user=%u,client=%h '",
    log_min_duration_statement: "1000",
    log_statement: "'ddl'",
    log_connections: "on",
    log_disconnections: "on",
    log_lock_waits: "on",
    log_temp_files: "'10MB'",
    shared_preload_libraries: "'pg_stat_statements, auto_explain, pg_cron'",
    "pg_stat_statements.max": "10000",
    "pg_stat_statements.track": "'all'",
    "auto_explain.log_min_duration": "1000",
    "auto_explain.log_analyze": "'on'",
    "auto_explain.log_buffers": "'on'",
    "cron.database_name": "'postgres'",
    "cron.use_background_workers": "'on'",
    wal_level: "'logical'",
    max_wal_senders: "10",
    password_encryption: "'scram-sha-256'",
    max_replication_slots: "10",
    hot_standby: "on",
    synchronous_commit: "on",
    archive_mode: "on",
    archive_command: "'/usr/local/bin/beyond-pg archive %p %f'",
    full_page_writes: "on",
    wal_sync_method: "'fdatasync'",
    wal_compression: "'lz4'",
    checkpoint_timeout: "'15min'",
    checkpoint_completion_target: "0.9",
    recovery_init_sync_method: "'syncfs'",
    bgwriter_delay: "'100ms'",
    bgwriter_lru_maxpages: "1000",
    random_page_cost: "1.1",
    effective_io_concurrency: "200",
    idle_in_transaction_session_timeout: "'5min'",
    lock_timeout: "'30s'",
    tcp_keepalives_idle: "60",
    tcp_keepalives_interval: "10",
    tcp_keepalives_count: "6",
    autovacuum_vacuum_scale_factor: "0.1",
    autovacuum_naptime: "'30s'",
    max_locks_per_transaction: "256",
  };
  assert.deepEqual(Object.fromEntries(conf), expected);
});

Deno.test("planConfig() skips settings the server does not know, one warning each", () => {
  const known = new Set(allSettings15);
  known.delete("wal_keep_size");
  known.delete("effective_io_concurrency");
  const plan = planConfig(planInputFixture({ caps: capsFixture({ knownSettings: known }) }));
  const conf = settingsOf(file(plan, "00-beyond.conf"));
  assert.equal(settingsOf(file(plan, "01-tuning.conf")).has("wal_keep_size"), false);
  assert.equal(conf.has("effective_io_concurrency"), false);
  assert.deepEqual(plan.warnings.filter((w) => w.includes("does not know")), [
    "00-beyond.conf: skipping effective_io_concurrency: PostgreSQL 15 does not know it",
    "01-tuning.conf: skipping wal_keep_size: PostgreSQL 15 does not know it",
  ]);
});

Deno.test("planConfig() preloads manifest order ∩ installed and warns once per missing library", () => {
  const plan = planConfig(planInputFixture());
  assert.deepEqual(plan.preload, ["pg_stat_statements", "auto_explain", "pg_cron"]);
  assert.deepEqual(plan.warnings.filter((w) => w.startsWith("shared_preload")), [
    "shared_preload_libraries: skipping beyond_auth: library not installed",
    "shared_preload_libraries: skipping beyond_queue: library not installed",
  ]);
});

Deno.test("planConfig() drops an extension's settings when its library is missing", () => {
  const plan = planConfig(planInputFixture({
    caps: capsFixture({ libraries: new Set(["pg_stat_statements"]) }),
  }));
  const conf = settingsOf(file(plan, "00-beyond.conf"));
  assert.equal(conf.get("shared_preload_libraries"), "'pg_stat_statements'");
  assert.equal(conf.has("cron.database_name"), false);
  assert.equal(conf.has("auto_explain.log_analyze"), false);
  assert.equal(conf.has("pg_stat_statements.max"), true);
});

Deno.test("planConfig() falls back to pglz when the server has no lz4", () => {
  const plan = planConfig(planInputFixture({ caps: capsFixture({ lz4: false }) }));
  assert.equal(settingsOf(file(plan, "00-beyond.conf")).get("wal_compression"), "'pglz'");
  assert.ok(plan.warnings.some((w) => w.includes("without lz4")));
});

Deno.test("planConfig() writes 02-durability.conf only on an ephemeral volume", () => {
  const durable = planConfig(planInputFixture());
  assert.equal(durable.files.some((f) => f.path.endsWith("02-durability.conf")), false);
  assert.ok(durable.remove.includes("/data/main/conf.d/02-durability.conf"));
  const settings = settingsFixture({ BEYOND_VOLUME_EPHEMERAL: "true" });
  const ephemeral = planConfig(planInputFixture({ settings }));
  assert.equal(
    settingsOf(file(ephemeral, "02-durability.conf")).get("synchronous_commit"),
    "off",
  );
  assert.equal(ephemeral.remove.includes("/data/main/conf.d/02-durability.conf"), false);
});

Deno.test("planConfig() 01-tuning.conf follows the formulas for the given RAM and vCPUs", () => {
  const conf = settingsOf(
    file(planConfig(planInputFixture({ ramMb: 16384, vcpus: 8 })), "01-tuning.conf"),
  );
  assert.deepEqual(Object.fromEntries(conf), {
    shared_buffers: "'4096MB'",
    effective_cache_size: "'12288MB'",
    maintenance_work_mem: "'819MB'",
    work_mem: "'136MB'",
    max_connections: "100",
    wal_buffers: "'16MB'",
    max_worker_processes: "12",
    max_parallel_workers: "8",
    max_parallel_workers_per_gather: "4",
    max_parallel_maintenance_workers: "4",
    max_wal_size: "'8192MB'",
    min_wal_size: "'1024MB'",
    wal_keep_size: "'1024MB'",
  });
});

Deno.test("planConfig() bounds local WAL by the data volume's size", () => {
  const small = settingsOf(file(planConfig(planInputFixture({ volumeMb: 300 })), "01-tuning.conf"));
  assert.equal(small.get("max_wal_size"), "'75MB'");
  assert.equal(small.get("min_wal_size"), "'32MB'");
  assert.equal(small.get("wal_keep_size"), "'18MB'");
  const big = settingsOf(
    file(planConfig(planInputFixture({ volumeMb: 200_000 })), "01-tuning.conf"),
  );
  assert.equal(big.get("max_wal_size"), "'8192MB'");
  assert.equal(big.get("wal_keep_size"), "'1024MB'");
});

Deno.test("planConfig() sets archive_timeout only with an archive target", () => {
  const none = settingsOf(file(planConfig(planInputFixture()), "00-beyond.conf"));
  assert.equal(none.has("archive_timeout"), false);
  const settings = settingsFixture({
    BEYOND_PG_ARCHIVE_TARGET: "s3://bucket/p",
    BEYOND_PG_S3_ACCESS_KEY: "a",
    BEYOND_PG_S3_SECRET_KEY: "s",
  });
  const withTarget = settingsOf(file(planConfig(planInputFixture({ settings })), "00-beyond.conf"));
  assert.equal(withTarget.get("archive_timeout"), "60");
  // WAL summaries for incremental backups: only where the server has them (17+), no warning on 15.
  assert.equal(withTarget.has("summarize_wal"), false);
  const caps = capsFixture({
    major: 17,
    knownSettings: new Set([...allSettings15, "summarize_wal"]),
  });
  const plan17 = planConfig(planInputFixture({ settings, caps }));
  assert.equal(settingsOf(file(plan17, "00-beyond.conf")).get("summarize_wal"), "on");
  assert.equal(plan17.warnings.some((w) => /summarize_wal/.test(w)), false);
  const none17 = planConfig(planInputFixture({ caps }));
  assert.equal(settingsOf(file(none17, "00-beyond.conf")).has("summarize_wal"), false);
});

Deno.test("planConfig() creates 99-user.conf only once and never rewrites it", () => {
  const plan = planConfig(planInputFixture());
  assert.equal(plan.files.some((f) => f.path.endsWith("99-user.conf")), false);
  assert.deepEqual(plan.createOnce.map((f) => f.path), ["/data/main/conf.d/99-user.conf"]);
});

Deno.test("renderHba() is SCRAM with socket peer for postgres only, and has no trust line", () => {
  const hba = renderHba({ replicationRole: "beyond_replicator", peers: ["10.0.0.0/24"] });
  assert.doesNotMatch(hba, /\btrust\b/);
  assert.doesNotMatch(hba, /\bmd5\b|\bpassword\b/);
  assert.match(hba, /^local\s+all\s+postgres\s+peer map=beyond$/m);
  assert.match(hba, /^host\s+all\s+all\s+all\s+scram-sha-256$/m);
});

Deno.test("renderIdent() maps each OS user to postgres once", () => {
  assert.equal(
    renderIdent(["root", "postgres", "root"]).split("\n").filter((l) => l.startsWith("beyond"))
      .join("|"),
    "beyond  postgres  postgres|beyond  root  postgres",
  );
});

Deno.test("renderPgbouncerIni() skips max_prepared_statements before PgBouncer 1.21", () => {
  const base = {
    listenAddr: "0.0.0.0",
    port: 5432,
    socketDir: "/s",
    directPort: 5433,
    authFile: "/r/userlist.txt",
    pidFile: "/r/p.pid",
    poolSize: 20,
    ramMb: 1024,
  };
  const old = renderPgbouncerIni({ ...base, version: "1.18.0" });
  assert.doesNotMatch(old.content, /max_prepared_statements/);
  assert.deepEqual(old.warnings, [
    "pgbouncer.ini: skipping max_prepared_statements: needs PgBouncer 1.21.0, found 1.18.0",
  ]);
  const recent = renderPgbouncerIni({ ...base, version: "1.23.1" });
  assert.match(recent.content, /^max_prepared_statements = 200$/m);
  assert.deepEqual(recent.warnings, []);
  assert.match(recent.content, /^\* = host=\/s port=5433$/m);
  assert.match(recent.content, /^pool_mode = transaction$/m);
  assert.match(recent.content, /^auth_type = scram-sha-256$/m);
  assert.match(recent.content, /^server_login_retry = 1$/m);
});

Deno.test("maxClientConn() is 2 per MiB of RAM, from 1000 to 20000", () => {
  assert.deepEqual([128, 256, 500, 1024, 4096, 9999, 65536].map(maxClientConn), [
    1000,
    1000,
    1000,
    2048,
    8192,
    19998,
    20000,
  ]);
});

Deno.test("planConfig() sizes PgBouncer's client slots and accept queue from the VM and drops silent logins after 10 s", () => {
  for (
    const [ramMb, clients, backlog] of [[256, 1000, 1000], [2048, 4096, 4096], [
      32768,
      20000,
      4096,
    ]] as const
  ) {
    const ini = file(planConfig(planInputFixture({ ramMb })), "pgbouncer.ini");
    assert.match(ini, new RegExp(`^max_client_conn = ${clients}$`, "m"), `${ramMb} MB`);
    assert.match(ini, new RegExp(`^listen_backlog = ${backlog}$`, "m"), `${ramMb} MB`);
    assert.match(ini, /^client_login_timeout = 10$/m);
  }
});

Deno.test("compareVersions() orders dotted versions numerically", () => {
  assert.ok(compareVersions("1.9.0", "1.21.0") < 0);
  assert.ok(compareVersions("1.21.0", "1.21") === 0);
  assert.ok(compareVersions("1.23.1", "1.21.0") > 0);
});

Deno.test("renderAuthFile() quotes roles and verifiers", () => {
  assert.equal(
    renderAuthFile([{ role: 'we"ird', verifier: "SCRAM-SHA-256$4096:abc$def:ghi" }]),
    '"we""ird" "SCRAM-SHA-256$4096:abc$def:ghi"\n',
  );
});

Deno.test("withIncludeDir() appends the include at the end, once, however often applied", () => {
  const stock = "max_connections = 100\nshared_buffers = 128MB\n";
  const once = withIncludeDir(stock, "/d/main/conf.d");
  assert.equal(withIncludeDir(once, "/d/main/conf.d"), once);
  assert.ok(once.trimEnd().endsWith("include_dir = '/d/main/conf.d'"));
  assert.equal(once.split(INCLUDE_MARKER).length, 2);
  const moved = withIncludeDir(once + "work_mem = 4MB\n", "/e/conf.d");
  assert.ok(moved.trimEnd().endsWith("include_dir = '/e/conf.d'"));
  assert.ok(moved.includes("work_mem = 4MB"));
  assert.equal(moved.split("include_dir").length, 2);
});

Deno.test("quoteConfValue() escapes quotes and backslashes", () => {
  assert.equal(quoteConfValue("it's \\ here"), "'it''s \\\\ here'");
  assert.equal(quoteConfValue(1.1), "1.1");
  assert.equal(quoteConfValue(false), "off");
});

Deno.test("parseDescribeConfig() takes the first column", () => {
  assert.deepEqual(
    [...parseDescribeConfig("archive_command\tsighup\tx\nport\tpostmaster\ty\n\n")],
    ["archive_command", "port"],
  );
});

Deno.test("parseManifest() rejects a non-boolean preload with a fix", () => {
  assert.throws(
    () => parseManifest("[extensions.x]\npreload = 'yes'\n", "m.toml"),
    /m\.toml: extensions\.x\.preload is not true\/false; use true or false/,
  );
  assert.throws(() => parseManifest("[extensions\n", "m.toml"), /not valid TOML/);
});

Deno.test("parseManifest() keeps document order and defaults", () => {
  const m = parseManifest("[extensions.b]\n[extensions.a]\npreload = true\ncreate = false\n", "m");
  assert.deepEqual(m.extensions.map((e) => [e.name, e.preload, e.create, e.library]), [
    ["b", false, true, "b"],
    ["a", true, false, "a"],
  ]);
});

Deno.test("planConfig() writes 06-tls.conf from resolved TLS files, ssl_ca_file only with a CA", () => {
  const withCa = planConfig(planInputFixture({
    tls: {
      certFile: "/run/beyond-pg/tls/server.crt",
      keyFile: "/run/beyond-pg/tls/server.key",
      caFile: "/run/beyond-pg/tls/ca.crt",
    },
  }));
  assert.deepEqual(Object.fromEntries(settingsOf(file(withCa, "06-tls.conf"))), {
    ssl: "on",
    ssl_cert_file: "'/run/beyond-pg/tls/server.crt'",
    ssl_key_file: "'/run/beyond-pg/tls/server.key'",
    ssl_ca_file: "'/run/beyond-pg/tls/ca.crt'",
    ssl_min_protocol_version: "'TLSv1.2'",
  });
  const ini = file(withCa, "pgbouncer.ini");
  assert.match(ini, /^client_tls_sslmode = allow$/m);
  assert.match(ini, /^client_tls_cert_file = \/run\/beyond-pg\/tls\/server\.crt$/m);
  assert.match(ini, /^client_tls_ca_file = /m);
  const noCa = planConfig(
    planInputFixture({ tls: { certFile: "/c", keyFile: "/k", caFile: undefined } }),
  );
  assert.equal(settingsOf(file(noCa, "06-tls.conf")).has("ssl_ca_file"), false);
  // PgBouncer gets the certificate itself as its CA file (a fast start; see tls_conf.ts).
  assert.match(file(noCa, "pgbouncer.ini"), /^client_tls_ca_file = \/c$/m);
  const off = planConfig(planInputFixture());
  assert.equal(off.files.some((f) => f.path.endsWith("06-tls.conf")), false);
  assert.ok(off.remove.includes("/data/main/conf.d/06-tls.conf"));
});

Deno.test("planConfig() PgBouncer client TLS can be required", () => {
  const settings = settingsFixture({ BEYOND_PG_TLS_CLIENT_MODE: "require" });
  const plan = planConfig(
    planInputFixture({ settings, tls: { certFile: "/c", keyFile: "/k", caFile: undefined } }),
  );
  assert.match(file(plan, "pgbouncer.ini"), /^client_tls_sslmode = require$/m);
});

Deno.test("property: no generated pg_hba.conf, for any settings, has a trust (or md5/password) rule", () => {
  let seed = 1;
  const rand = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  for (let i = 0; i < 300; i++) {
    const settings = settingsFixture({
      BEYOND_VOLUME_EPHEMERAL: pick(["true", "false"]),
      BEYOND_PG_PORT: String(1024 + Math.floor(rand() * 1000)),
      BEYOND_PG_DIRECT_PORT: String(3000 + Math.floor(rand() * 1000)),
      BEYOND_PG_LISTEN_ADDR: pick(["0.0.0.0", "127.0.0.1", "::"]),
      BEYOND_PG_TLS_CLIENT_MODE: pick(["allow", "require"]),
      POSTGRES_DATABASE: pick(["postgres", "app", "trust"]),
      BEYOND_PG_OS_USER: pick(["postgres", "pg", "trust"]),
      BEYOND_PG_REPLICATION_PEERS: pick(["", "10.0.0.0/8", "10.0.0.5,fd00::/64"]),
    });
    const plan = planConfig(planInputFixture({
      settings,
      identUsers: [pick(["root", "trust", "alice"])],
      ramMb: 256 + Math.floor(rand() * 65536),
      vcpus: 1 + Math.floor(rand() * 64),
      tls: rand() < 0.5
        ? undefined
        : { certFile: "/c", keyFile: "/k", caFile: pick([undefined, "/ca"]) },
    }));
    const hba = file(plan, "pg_hba.conf").split("\n").filter((l) => l && !l.startsWith("#"));
    for (const line of hba) {
      const method = line.trim().split(/\s+/).find((w) =>
        /^(trust|md5|password|peer|scram-sha-256|reject|ident)$/.test(w)
      );
      assert.ok(
        method === "peer" || method === "scram-sha-256" || method === "reject",
        `rule "${line}"`,
      );
      if (method === "peer") assert.match(line, /^local\s/);
    }
  }
});
