import assert from "node:assert/strict";
import { parseSettings } from "./settings.ts";
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
    [{ BEYOND_PG_TIER: "gold" }, /BEYOND_PG_TIER="gold" is not a known tier; use "single"/],
    [{ BEYOND_PG_TIER: "replica" }, /BEYOND_PG_TIER="replica" is planned .* use "single"/],
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
    [{ BEYOND_PG_WAL_SINK: "ftp://x" }, /BEYOND_PG_WAL_SINK="ftp:\/\/x" is not http\(s\)/],
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
  assert.equal(`${s.s3?.secretAccessKey}`, "[redacted]");
  assert.equal(s.ephemeral, true);
  assert.equal(s.archiveTarget, "s3://my-bucket/pg/prod");
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
