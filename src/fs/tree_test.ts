import assert from "node:assert/strict";
import { actingAs, asUser } from "./identity.ts";
import { PgTree, rootChainProblem, RootTree } from "./tree.ts";
import { ensureOwnedDir, readOwnedFile, UnsafeFileError } from "./handover.ts";

/** The postgres OS user, when this test runs as root (else the identity tests are skipped). */
function postgres(): { uid: number; gid: number } | undefined {
  if (Deno.uid() !== 0) return undefined;
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((l) =>
    l.startsWith("postgres:")
  );
  if (!line) return undefined;
  const f = line.split(":");
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

function rootOnlyVictim(dir: string): string {
  const v = `${dir}/victim`;
  Deno.mkdirSync(v, { mode: 0o700 });
  Deno.writeTextFileSync(`${v}/secret`, "root only\n", { mode: 0o600 });
  return v;
}

Deno.test("rootChainProblem() accepts root's directories and names the first one others can write", () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o755);
    assert.equal(rootChainProblem(dir), undefined);
    Deno.mkdirSync(`${dir}/open`);
    Deno.chmodSync(`${dir}/open`, 0o777);
    assert.match(rootChainProblem(`${dir}/open`)!, /writable by others/);
    assert.throws(
      () => RootTree.check(`${dir}/open/below`, "BEYOND_PG_RUN_DIR"),
      /BEYOND_PG_RUN_DIR=.*chmod go-w/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a tree refuses paths outside it, and .. in a path", () => {
  const t = new PgTree("/tmp/x", undefined);
  assert.throws(() => t.exists("/tmp/y/z"), /not inside/);
  assert.throws(() => t.exists("/tmp/x/../y"), /normalized/);
});

Deno.test("PgTree as postgres: a planted link to a root-only file is neither read nor written", {
  ignore: !postgres(),
}, () => {
  const pg = postgres()!;
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o755);
    const victim = rootOnlyVictim(dir);
    const data = `${dir}/data`;
    Deno.mkdirSync(data);
    Deno.chownSync(data, pg.uid, pg.gid);
    const t = new PgTree(data, pg);
    Deno.symlinkSync(`${victim}/secret`, `${data}/link`);
    assert.throws(() => t.readText(`${data}/link`), Deno.errors.PermissionDenied);
    assert.throws(() => t.chmod(`${data}/link`, 0o666), Deno.errors.PermissionDenied);
    // writeAtomic replaces the link itself, never writes through it.
    t.writeAtomic(`${data}/link`, "new", 0o600);
    assert.equal(Deno.readTextFileSync(`${victim}/secret`), "root only\n");
    assert.equal(Deno.lstatSync(`${data}/link`).uid, pg.uid);
    assert.equal(actingAs(), undefined, "identity restored");
    // And root can still do root's work afterwards.
    Deno.writeTextFileSync(`${victim}/after`, "ok");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("asUser() refuses a callback that returns a promise (async calls are not covered)", {
  ignore: !postgres(),
}, () => {
  assert.throws(() => asUser(postgres(), () => Promise.resolve(1)), /synchronous/);
  assert.equal(actingAs(), undefined);
});

Deno.test("readOwnedFile(): a link, a file of another owner, a FIFO are refused", {
  ignore: !postgres(),
}, async () => {
  const pg = postgres()!;
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o755);
    const victim = rootOnlyVictim(dir);
    Deno.symlinkSync(`${victim}/secret`, `${dir}/link`);
    await assert.rejects(readOwnedFile(`${dir}/link`, pg, 1 << 20), UnsafeFileError);
    Deno.writeTextFileSync(`${dir}/rootfile`, "x");
    await assert.rejects(readOwnedFile(`${dir}/rootfile`, pg, 1 << 20), /owned by uid 0/);
    Deno.writeTextFileSync(`${dir}/mine`, "hello");
    Deno.chownSync(`${dir}/mine`, pg.uid, pg.gid);
    assert.equal(
      new TextDecoder().decode(await readOwnedFile(`${dir}/mine`, pg, 1 << 20)),
      "hello",
    );
    await assert.rejects(readOwnedFile(`${dir}/mine`, pg, 2), /more than 2/);
    new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).outputSync();
    Deno.chownSync(`${dir}/fifo`, pg.uid, pg.gid);
    await assert.rejects(readOwnedFile(`${dir}/fifo`, pg, 1 << 20), /not a regular file/);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("ensureOwnedDir(): in a parent postgres owns, a link is refused and nothing is chowned", {
  ignore: !postgres(),
}, () => {
  const pg = postgres()!;
  const dir = Deno.makeTempDirSync();
  try {
    Deno.chmodSync(dir, 0o755);
    const victim = rootOnlyVictim(dir);
    const parent = `${dir}/pgparent`;
    Deno.mkdirSync(parent);
    Deno.chownSync(parent, pg.uid, pg.gid);
    Deno.symlinkSync(victim, `${parent}/data`);
    assert.throws(() => ensureOwnedDir(`${parent}/data`, pg, 0o700, "BEYOND_PG_DATA_ROOT"), /link/);
    assert.equal(Deno.statSync(victim).uid, 0);
    Deno.removeSync(`${parent}/data`);
    ensureOwnedDir(`${parent}/data`, pg, 0o700, "BEYOND_PG_DATA_ROOT");
    const made = Deno.statSync(`${parent}/data`);
    assert.equal(made.uid, pg.uid);
    assert.equal((made.mode ?? 0) & 0o777, 0o700);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
