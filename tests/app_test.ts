/**
 * What an app developer does: a role created after boot logs in through PgBouncer at once, and
 * a popular Node driver (npm:postgres) works on 5432 (transaction pooling) and 5433 (direct).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { cleanup, psql, startSupervisor } from "./support/harness.ts";

const READY = /\[beyond-pg\] ready:/;

Deno.test("a role created after boot logs in through 5432 at once (auth_query + SCRAM pass-through)", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    await psql(pg.directPort, "create role app login password 'app-secret'", {
      password: pg.password,
    });
    await psql(pg.directPort, "create database appdb owner app", { password: pg.password });
    assert.equal(
      await psql(pg.port, "select current_user", {
        user: "app",
        db: "appdb",
        password: "app-secret",
      }),
      "app",
    );
    await assert.rejects(
      psql(pg.port, "select 1", { user: "app", db: "appdb", password: "wrong" }),
    );
    // A password change applies through PgBouncer immediately, too.
    await psql(pg.directPort, "alter role app password 'rotated'", { password: pg.password });
    assert.equal(
      await psql(pg.port, "select 1", { user: "app", db: "appdb", password: "rotated" }),
      "1",
    );
  } finally {
    await cleanup(pg);
  }
});

Deno.test("npm:postgres works through 5432 (transaction pooling) and 5433 (prepared statements)", async () => {
  const pg = await startSupervisor();
  try {
    await pg.waitFor(READY);
    // PgBouncer before 1.21 has no protocol-level prepared statements in transaction mode.
    const pooled = postgres({
      host: "127.0.0.1",
      port: pg.port,
      user: "postgres",
      password: pg.password,
      database: "postgres",
      prepare: false,
      max: 4,
    });
    const direct = postgres({
      host: "127.0.0.1",
      port: pg.directPort,
      user: "postgres",
      password: pg.password,
      database: "postgres",
      max: 2,
    });
    try {
      await direct`create table items (id serial primary key, name text not null)`;
      await pooled.begin(async (tx) => {
        await tx`insert into items (name) values (${"a"}), (${"b"})`;
      });
      const rows = await Promise.all(
        [1, 2, 3, 4].map(() => pooled`select count(*)::int as n from items`),
      );
      assert.deepEqual(rows.map((r) => r[0]!.n), [2, 2, 2, 2]);
      const [row] = await direct`select count(*)::int as n from items where name = ${"a"}`;
      assert.equal(row?.n, 1);
    } finally {
      await pooled.end();
      await direct.end();
    }
  } finally {
    await cleanup(pg);
  }
});
