import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import knexFactory from "knex";

export interface TestDatabase {
  name: "sqlite" | "postgres" | "mysql";
  /** URL of a database created for this run. */
  url: string;
  /** Drops the database (or deletes the SQLite file). */
  drop(): Promise<void>;
}

type Factory = () => Promise<TestDatabase>;

/**
 * The databases the storage suites run on: SQLite always, PostgreSQL and MariaDB/MySQL when
 * KM_TEST_POSTGRES_URL / KM_TEST_MYSQL_URL name a server. Each run gets a fresh database.
 */
export function testDatabases(): Array<{ name: string; create?: Factory; skip?: string }> {
  const pg = process.env.KM_TEST_POSTGRES_URL;
  const my = process.env.KM_TEST_MYSQL_URL;
  // CI sets this: there a database left out is a failure, not a skip.
  if (process.env.KM_TEST_REQUIRE_ALL_DATABASES === "1" && (!pg || !my)) {
    throw new Error("KM_TEST_REQUIRE_ALL_DATABASES=1 but KM_TEST_POSTGRES_URL or KM_TEST_MYSQL_URL is not set");
  }
  return [
    { name: "sqlite", create: sqlite },
    pg ? { name: "postgres", create: () => serverDatabase("postgres", pg) } : { name: "postgres", skip: "KM_TEST_POSTGRES_URL is not set" },
    my ? { name: "mysql", create: () => serverDatabase("mysql", my) } : { name: "mysql", skip: "KM_TEST_MYSQL_URL is not set" },
  ];
}

async function sqlite(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), "km-db-"));
  return {
    name: "sqlite",
    url: `sqlite:${join(dir, "test.db")}`,
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A new database on the server of `adminUrl` (whose own database is left alone), dropped by drop(). */
export async function serverDatabase(name: "postgres" | "mysql", adminUrl: string): Promise<TestDatabase> {
  const database = `km_test_${Date.now()}_${randomBytes(4).toString("hex")}`;
  const client = name === "postgres" ? "pg" : "mysql2";
  const admin = knexFactory({ client, connection: adminUrl, pool: { min: 0, max: 1 } });
  try {
    await admin.raw(name === "postgres" ? `CREATE DATABASE "${database}"` : `CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
  } finally {
    await admin.destroy();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return {
    name,
    url: url.toString(),
    async drop() {
      const cleanup = knexFactory({ client, connection: adminUrl, pool: { min: 0, max: 1 } });
      try {
        await cleanup.raw(name === "postgres" ? `DROP DATABASE IF EXISTS "${database}" WITH (FORCE)` : `DROP DATABASE IF EXISTS \`${database}\``);
      } finally {
        await cleanup.destroy();
      }
    },
  };
}
