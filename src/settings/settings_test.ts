import assert from "node:assert/strict";
import { parseSettings, parseSinkSettings } from "./settings.ts";
import { Secret } from "./secret.ts";

const ctx = {
  major: 15,
  readFile: (p: string) => (p === "/pw" ? "from-file\n" : p === "/empty" ? "\n" : (() => {
    throw new Error("ENOENT");
  })()),
};

function parse(raw: Record<string, string>) {
  return parseSettings(raw, ctx);
}

Deno.test("parseSettings() applies the spec's defaults", () => {
  const s = parse({ POSTGRES_PASSWORD: "pw" });
  assert.equal(s.tier, "single");
  assert.equal(s.ephemeral, false);
  assert.equal(s.database, "postgres");
  assert.equal(s.dataRoot, "/var/lib/postgresql/15");
  assert.equal(s.runDir, "/run/beyond-pg");
  assert.equal(s.socketDir, "/var/run/postgresql");
  assert.equal(s.port, 5432);
  assert.equal(s.directPort, 5433);
  assert.equal(s.archiveTarget, undefined);
  assert.equal(s.hooksDir, "/etc/beyond-pg/hooks");
  assert.equal(s.password.reveal(), "pw");
  assert.equal(s.controlVsockPeerCid, 2);
  assert.equal(
    parse({ POSTGRES_PASSWORD: "pw", BEYOND_PG_CONTROL_VSOCK_PEER_CID: "1" })
      .controlVsockPeerCid,
    1,
  );
});

Deno.test("parseSettings() without a password fails with the fix and nothing else", () => {
  assert.throws(
    () => parse({}),
    {
      message:
        "Cannot start: POSTGRES_PASSWORD is not set in metadata or environment; set it (or POSTGRES_PASSWORD_FILE) to a non-empty secret",
    },
  );
  assert.throws(() => parse({ POSTGRES_PASSWORD: "" }), /POSTGRES_PASSWORD is not set/);
});

Deno.test("parseSettings() reads POSTGRES_PASSWORD_FILE without its trailing newline", () => {
  assert.equal(parse({ POSTGRES_PASSWORD_FILE: "/pw" }).password.reveal(), "from-file");
  assert.throws(
    () => parse({ POSTGRES_PASSWORD_FILE: "/empty" }),
    /is empty; put a non-empty secret/,
  );
  assert.throws(
    () => parse({ POSTGRES_PASSWORD_FILE: "/nope" }),
    /cannot be read; point it at a readable file/,
  );
});

Deno.test("parseSettings() refuses both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE", () => {
  assert.throws(
    () => parse({ POSTGRES_PASSWORD: "a", POSTGRES_PASSWORD_FILE: "/pw" }),
    /both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set; set only one of them/,
  );
});

Deno.test("parseSettings() names the bad value and the fix for each malformed key", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [
      { BEYOND_PG_TIER: "gold" },
      /BEYOND_PG_TIER="gold" is not a known tier; use single, primary or replica/,
    ],
    [
      { BEYOND_PG_TIER: "replica" },
      /BEYOND_PG_TIER=replica needs BEYOND_PG_PRIMARY; set it to the primary's host:port/,
    ],
    [
      { BEYOND_PG_TIER: "primary" },
      /BEYOND_PG_TIER=primary needs BEYOND_PG_REPLICATION_PASSWORD/,
    ],
    [
      { BEYOND_PG_TIER: "primary", BEYOND_PG_REPLICATION_PASSWORD: "pw" },
      /is the same as POSTGRES_PASSWORD; give the replication role a secret of its own/,
    ],
    [
      { BEYOND_PG_TIER: "replica", BEYOND_PG_PRIMARY: "db1" },
      /BEYOND_PG_PRIMARY="db1" is not host:port/,
    ],
    [
      { BEYOND_PG_REPLICATION_PEERS: "10.0.0.0/33" },
      /"10.0.0.0\/33" is not an address or CIDR block/,
    ],
    [{ BEYOND_PG_SYNC_STANDBYS: "ANY 3 (a, b)" }, /waits for 3 of 2 standbys; use 1 to 2/],
    [{ BEYOND_PG_SYNC_STANDBYS: "ANY 1 (a, A)" }, /"A" is not a standby name/],
    [{ BEYOND_PG_SYNC_COMMIT: "local" }, /not a synchronous_commit level here/],
    [
      { BEYOND_PG_WAL_SINK: "s1=http://a:1", BEYOND_PG_REPLICATION_PASSWORD: "r" },
      /BEYOND_PG_WAL_SINK_TOKEN is not; set it/,
    ],
    [
      { BEYOND_PG_WAL_SINK: "s1", BEYOND_PG_REPLICATION_PASSWORD: "r" },
      /"s1" is not name=URL/,
    ],
    [
      {
        BEYOND_PG_WAL_SINK: "s1=http://a:1",
        BEYOND_PG_WAL_SINK_TOKEN: "t",
        BEYOND_PG_REPLICATION_PASSWORD: "r",
        BEYOND_PG_WAL_SINK_QUORUM: "2",
      },
      /QUORUM=2 but only 1 sink\(s\) are configured/,
    ],
    [
      {
        BEYOND_PG_WAL_SINK: "s1=http://a:1",
        BEYOND_PG_WAL_SINK_TOKEN: "t",
        BEYOND_PG_REPLICATION_PASSWORD: "r",
        BEYOND_PG_SYNC_COMMIT: "remote_apply",
      },
      /a sink never applies WAL/,
    ],
    [
      { BEYOND_VOLUME_EPHEMERAL: "maybe" },
      /BEYOND_VOLUME_EPHEMERAL="maybe" is not a boolean; use true or false/,
    ],
    [{ BEYOND_PG_PORT: "70000" }, /BEYOND_PG_PORT="70000" is not a TCP port/],
    [
      { BEYOND_PG_PORT: "6000", BEYOND_PG_DIRECT_PORT: "6000" },
      /both 6000; give them different ports/,
    ],
    [{ BEYOND_PG_DATA_ROOT: "data" }, /BEYOND_PG_DATA_ROOT="data" is not an absolute path/],
    [{ BEYOND_PG_ARCHIVE_TARGET: "gs://b/p" }, /is not an S3 target; use s3:\/\/bucket\/prefix/],
    [
      { BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/p" },
      /S3 credentials are not; set BEYOND_PG_S3_ACCESS_KEY/,
    ],
    [
      {
        BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/p",
        AWS_ACCESS_KEY_ID: "a",
        AWS_SECRET_ACCESS_KEY: "s",
        BEYOND_PG_ARCHIVE_CODEC: "lz4",
      },
      /BEYOND_PG_ARCHIVE_CODEC="lz4" is not zstd, gzip or none/,
    ],
    [{ BEYOND_PG_HTTP: "9188" }, /BEYOND_PG_HTTP="9188" is not host:port/],
    [{ BEYOND_PG_RAM_MB: "lots" }, /BEYOND_PG_RAM_MB="lots" is out of range/],
    [{ POSTGRES_DATABASE: "x".repeat(64) }, /is not a valid database name/],
  ];
  for (const [raw, pattern] of cases) {
    assert.throws(() => parse({ POSTGRES_PASSWORD: "pw", ...raw }), pattern);
  }
});

Deno.test("parseSettings() accepts the usual spellings of booleans and an s3 target", () => {
  const s = parse({
    POSTGRES_PASSWORD: "pw",
    BEYOND_VOLUME_EPHEMERAL: "TRUE",
    BEYOND_PG_ARCHIVE_TARGET: "s3://my-bucket/pg/prod",
    BEYOND_PG_S3_ACCESS_KEY: "ak",
    BEYOND_PG_S3_SECRET_KEY: "sk",
    BEYOND_PG_S3_ENDPOINT: "http://127.0.0.1:7480",
    BEYOND_PG_DATA_ROOT: "/data/",
  });
  assert.equal(s.s3?.endpoint, "http://127.0.0.1:7480");
  assert.equal(s.s3?.codec, "zstd");
  const creds = s.s3?.credentials;
  assert.equal(creds?.kind === "keys" && `${creds.secretAccessKey}`, "[redacted]");
  assert.equal(s.ephemeral, true);
  assert.deepEqual(s.archiveTarget, {
    url: "s3://my-bucket/pg/prod",
    bucket: "my-bucket",
    prefix: "pg/prod",
  });
  assert.equal(s.dataRoot, "/data");
});

Deno.test("Secret never shows its value in strings, JSON or inspect", () => {
  const s = new Secret("hunter2");
  assert.equal(`${s}`, "[redacted]");
  assert.equal(JSON.stringify({ s }), '{"s":"[redacted]"}');
  assert.equal(Deno.inspect({ s }).includes("hunter2"), false);
  assert.equal(s.reveal(), "hunter2");
});

Deno.test("parseSettings() refuses control characters (a newline would add pgbouncer.ini lines)", () => {
  const base = { POSTGRES_PASSWORD: "pw\nwith newline is fine" };
  const ctx = { major: 15, readFile: () => "" };
  for (
    const [key, value] of [
      ["BEYOND_PG_LISTEN_ADDR", "127.0.0.1\n%include /etc/shadow"],
      ["BEYOND_PG_SOCKET_DIR", "/run/x\n"],
      ["POSTGRES_DATABASE", "app\r"],
    ]
  ) {
    assert.throws(
      () => parseSettings({ ...base, [key!]: value! }, ctx),
      new RegExp(`${key}=.*control character`),
    );
  }
  assert.throws(
    () => parseSettings({ ...base, BEYOND_PG_LISTEN_ADDR: "127.0.0.1 %include" }, ctx),
    /BEYOND_PG_LISTEN_ADDR=.*not an address list/,
  );
  for (const ok of ["*", "0.0.0.0", "127.0.0.1,::1", "db.internal"]) {
    assert.equal(parseSettings({ ...base, BEYOND_PG_LISTEN_ADDR: ok }, ctx).listenAddr, ok);
  }
});

const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const files: Record<string, string> = {
  "/ca.pem": pem,
  "/sse.key": "5Gf0Yx6b8gR3QZbq1W0mYQ3X1k0VmTn4V4mJp2yqZ9w=\n",
  "/sse.hex": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
  "/not-pem": "hello\n",
  "/ak": "from-file-ak\n",
  "/sk": "from-file-sk\n",
  "/empty": "",
  "/m.toml": "[extensions]\n",
};
const fsCtx = {
  major: 16,
  readFile: (p: string) => {
    const text = files[p];
    if (text === undefined) throw new Deno.errors.NotFound(p);
    return text;
  },
  stat: (p: string) =>
    p === "/tls-dir" ? { isDirectory: true } : p === "/ca.pem" ? { isDirectory: false } : undefined,
};
const s3Base = {
  POSTGRES_PASSWORD: "pw",
  BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/a/b/",
  BEYOND_PG_S3_ACCESS_KEY: "ak",
  BEYOND_PG_S3_SECRET_KEY: "sk",
};

Deno.test("parseSettings() parses the archive target once: url, bucket and prefix", () => {
  const s = parseSettings(s3Base, fsCtx);
  assert.deepEqual(s.archiveTarget, { url: "s3://bkt/a/b/", bucket: "bkt", prefix: "a/b" });
  assert.equal(s.archiveOff, false);
  assert.equal(s.s3?.endpoint, "https://s3.us-east-1.amazonaws.com");
  const root = parseSettings({ ...s3Base, BEYOND_PG_ARCHIVE_TARGET: "s3://bkt" }, fsCtx);
  assert.deepEqual(root.archiveTarget, { url: "s3://bkt", bucket: "bkt", prefix: "" });
  const off = parseSettings({ ...s3Base, BEYOND_PG_ARCHIVE_TARGET: "off" }, fsCtx);
  assert.equal(off.archiveTarget, undefined);
  assert.equal(off.archiveOff, true);
  assert.equal(off.s3, undefined);
  for (const bad of ["s3://Bkt/p", "s3://b/p", "s3:/bkt", "bkt/p"]) {
    assert.throws(
      () => parseSettings({ ...s3Base, BEYOND_PG_ARCHIVE_TARGET: bad }, fsCtx),
      /is not an S3 target; use s3:\/\/bucket\/prefix \(or off\)/,
    );
  }
});

Deno.test("parseSettings() has no walSink (parsed, never used)", () => {
  assert.equal("walSink" in parseSettings(s3Base, fsCtx), false);
});

Deno.test("parseSettings() reads the S3 CA file at parse time and carries the PEM", () => {
  const s = parseSettings({ ...s3Base, BEYOND_PG_S3_CA_FILE: "/ca.pem" }, fsCtx);
  assert.equal(s.s3?.caFile, "/ca.pem");
  assert.equal(s.s3?.caPem, pem);
  assert.throws(
    () => parseSettings({ ...s3Base, BEYOND_PG_S3_CA_FILE: "/nope" }, fsCtx),
    {
      message:
        'Cannot start: BEYOND_PG_S3_CA_FILE="/nope" cannot be read; point it at a readable PEM CA certificate',
    },
  );
  assert.throws(
    () => parseSettings({ ...s3Base, BEYOND_PG_S3_CA_FILE: "/not-pem" }, fsCtx),
    /BEYOND_PG_S3_CA_FILE="\/not-pem" holds no PEM certificate .*; point it at a PEM CA certificate/,
  );
  // Without a target the S3 settings are not used, so not read.
  assert.equal(
    parseSettings({ POSTGRES_PASSWORD: "pw", BEYOND_PG_S3_CA_FILE: "/nope" }, fsCtx).s3,
    undefined,
  );
});

Deno.test("parseSettings() checks BEYOND_PG_TLS_DIR: absolute, and a directory when it exists", () => {
  const base = { POSTGRES_PASSWORD: "pw" };
  assert.equal(
    parseSettings({ ...base, BEYOND_PG_TLS_DIR: "/tls-dir/" }, fsCtx).tlsDir,
    "/tls-dir",
  );
  assert.equal(parseSettings({ ...base, BEYOND_PG_TLS_DIR: "/later" }, fsCtx).tlsDir, "/later");
  assert.throws(
    () => parseSettings({ ...base, BEYOND_PG_TLS_DIR: "/ca.pem" }, fsCtx),
    {
      message:
        'Cannot start: BEYOND_PG_TLS_DIR="/ca.pem" is not a directory; point it at a directory (or leave it absent)',
    },
  );
  assert.throws(
    () => parseSettings({ ...base, BEYOND_PG_TLS_DIR: "tls" }, fsCtx),
    /BEYOND_PG_TLS_DIR="tls" is not an absolute path/,
  );
  const denied = {
    ...fsCtx,
    stat: () => {
      throw new Deno.errors.PermissionDenied("no");
    },
  };
  assert.throws(
    () => parseSettings({ ...base, BEYOND_PG_TLS_DIR: "/x" }, denied),
    /BEYOND_PG_TLS_DIR="\/x" cannot be checked/,
  );
});

Deno.test("parseSettings() reads the extension manifest at parse time", () => {
  const base = { POSTGRES_PASSWORD: "pw" };
  assert.deepEqual(
    parseSettings({ ...base, BEYOND_PG_EXTENSIONS: "/m.toml" }, fsCtx)
      .extensionsManifest,
    { path: "/m.toml", text: "[extensions]\n" },
  );
  assert.equal(parseSettings(base, fsCtx).extensionsManifest, undefined);
  assert.throws(
    () => parseSettings({ ...base, BEYOND_PG_EXTENSIONS: "/none.toml" }, fsCtx),
    /BEYOND_PG_EXTENSIONS="\/none.toml" cannot be read; point it at a readable TOML manifest/,
  );
});

Deno.test("parseSettings() reads S3 credentials from AWS_* names and _FILE forms", () => {
  const target = { POSTGRES_PASSWORD: "pw", BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/p" };
  const aws = parseSettings({
    ...target,
    AWS_ACCESS_KEY_ID: "a",
    AWS_SECRET_ACCESS_KEY: "s",
    AWS_REGION: "eu-west-3",
  }, fsCtx);
  const keys = (x: typeof aws) => {
    const c = x.s3?.credentials;
    return c?.kind === "keys"
      ? [c.accessKeyId, c.secretAccessKey.reveal(), c.sessionToken?.reveal()]
      : [];
  };
  assert.deepEqual(keys(aws), ["a", "s", undefined]);
  assert.equal(aws.s3?.region, "eu-west-3");
  assert.equal(aws.s3?.endpoint, "https://s3.eu-west-3.amazonaws.com");
  const files = parseSettings({
    ...target,
    BEYOND_PG_S3_ACCESS_KEY_FILE: "/ak",
    AWS_SECRET_ACCESS_KEY_FILE: "/sk",
    AWS_ACCESS_KEY_ID: "ignored: the BEYOND_ name comes first",
  }, fsCtx);
  assert.deepEqual(keys(files), ["from-file-ak", "from-file-sk", undefined]);
  const temporary = parseSettings({
    ...target,
    AWS_ACCESS_KEY_ID: "a",
    AWS_SECRET_ACCESS_KEY: "s",
    AWS_SESSION_TOKEN: "tok",
  }, fsCtx);
  assert.deepEqual(keys(temporary), ["a", "s", "tok"]);
  assert.throws(
    () =>
      parseSettings({
        ...target,
        BEYOND_PG_S3_ACCESS_KEY: "a",
        BEYOND_PG_S3_ACCESS_KEY_FILE: "/ak",
        BEYOND_PG_S3_SECRET_KEY: "s",
      }, fsCtx),
    /both BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_ACCESS_KEY_FILE are set; set only one of them/,
  );
  assert.throws(
    () =>
      parseSettings({
        ...target,
        BEYOND_PG_S3_ACCESS_KEY: "a",
        BEYOND_PG_S3_SECRET_KEY_FILE: "/empty",
      }, fsCtx),
    /BEYOND_PG_S3_SECRET_KEY_FILE="\/empty" is empty; put a non-empty secret in it/,
  );
});

Deno.test("parseSettings() takes S3 credentials from a file or an endpoint, one way only", () => {
  const target = { POSTGRES_PASSWORD: "pw", BEYOND_PG_ARCHIVE_TARGET: "s3://bkt/p" };
  assert.deepEqual(
    parseSettings({ ...target, BEYOND_PG_S3_CREDENTIALS_FILE: "/run/creds.json" }, fsCtx).s3
      ?.credentials,
    { kind: "file", path: "/run/creds.json" },
  );
  const url = parseSettings({
    ...target,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: "http://127.0.0.1:9/creds",
    AWS_CONTAINER_AUTHORIZATION_TOKEN: "t0k",
  }, fsCtx).s3?.credentials;
  assert.equal(url?.kind, "url");
  assert.equal(url?.kind === "url" && url.token?.reveal(), "t0k");
  assert.throws(
    () =>
      parseSettings({
        ...target,
        BEYOND_PG_S3_ACCESS_KEY: "a",
        BEYOND_PG_S3_SECRET_KEY: "s",
        BEYOND_PG_S3_CREDENTIALS_FILE: "/c.json",
      }, fsCtx),
    /S3 credentials are set in more than one way \(BEYOND_PG_S3_ACCESS_KEY, BEYOND_PG_S3_CREDENTIALS_FILE\); set only one of them/,
  );
  assert.throws(
    () => parseSettings({ ...target }, fsCtx),
    /S3 credentials are not; set BEYOND_PG_S3_ACCESS_KEY and BEYOND_PG_S3_SECRET_KEY .*BEYOND_PG_S3_CREDENTIALS_FILE or BEYOND_PG_S3_CREDENTIALS_URL/,
  );
});

Deno.test("parseSettings() reads BEYOND_PG_S3_SSE, the storage class, the URL style and attempts", () => {
  const https = { ...s3Base, BEYOND_PG_S3_ENDPOINT: "https://s3.example" };
  const p = (raw: Record<string, string>) => parseSettings({ ...https, ...raw }, fsCtx).s3!;
  assert.deepEqual(p({ BEYOND_PG_S3_SSE: "aes256" }).sse, { kind: "aes256" });
  assert.deepEqual(p({ BEYOND_PG_S3_SSE: "kms:alias/pg" }).sse, { kind: "kms", keyId: "alias/pg" });
  const c = p({ BEYOND_PG_S3_SSE: "c:/sse.key" }).sse;
  assert.equal(c?.kind === "c" && c.key.reveal(), "5Gf0Yx6b8gR3QZbq1W0mYQ3X1k0VmTn4V4mJp2yqZ9w=");
  const hex = p({ BEYOND_PG_S3_SSE: "c:/sse.hex" }).sse;
  assert.equal(hex?.kind === "c" && atob(hex.key.reveal()).length, 32);
  assert.throws(
    () => p({ BEYOND_PG_S3_SSE: "c:/ak" }),
    /does not hold a 256-bit key as base64 or hex; make one with `openssl rand -base64 32`/,
  );
  assert.throws(
    () => p({ BEYOND_PG_S3_SSE: "des" }),
    /is not aes256, kms:<key id> or c:<key file>/,
  );
  assert.throws(
    () =>
      parseSettings({
        ...s3Base,
        BEYOND_PG_S3_ENDPOINT: "http://x",
        BEYOND_PG_S3_SSE: "c:/sse.key",
      }, fsCtx),
    /sends the encryption key with every request, and http:\/\/x is not HTTPS/,
  );
  assert.equal(p({ BEYOND_PG_S3_STORAGE_CLASS: "standard_ia" }).storageClass, "STANDARD_IA");
  assert.equal(p({}).urlStyle, "auto");
  assert.equal(p({ BEYOND_PG_S3_URL_STYLE: "virtual" }).urlStyle, "virtual");
  assert.equal(p({}).attempts, 8);
  assert.throws(() => p({ BEYOND_PG_S3_ATTEMPTS: "0" }), /out of range/);
});

Deno.test("wal-sink: BEYOND_PG_SINK_ACK is flush unless set to write; anything else is one line", () => {
  const base = {
    BEYOND_PG_PRIMARY: "10.0.0.1:5433",
    BEYOND_PG_REPLICATION_PASSWORD: "repl-pw",
    BEYOND_PG_WAL_SINK_TOKEN: "0123456789abcdef0123",
    BEYOND_PG_SINK_DIR: "/srv/wal",
    BEYOND_PG_STANDBY_NAME: "s1",
  };
  assert.equal(parseSinkSettings(base, ctx).ack, "flush");
  assert.equal(parseSinkSettings({ ...base, BEYOND_PG_SINK_ACK: "WRITE" }, ctx).ack, "write");
  assert.throws(
    () => parseSinkSettings({ ...base, BEYOND_PG_SINK_ACK: "fsync" }, ctx),
    /BEYOND_PG_SINK_ACK.*is not one of flush, write/,
  );
});
