import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import knexFactory, { type Knex } from "knex";
import { isUniqueViolation } from "./errors.js";
import { migrationSource } from "./migrations/index.js";

export type Dialect = "sqlite" | "postgres" | "mysql";

export interface DatabaseOptions {
  url: string;
  poolMax: number;
}

/** Which dialect a database URL names: sqlite:PATH, postgres(ql)://, mysql:// or mariadb://. */
export function dialectOf(url: string): Dialect {
  if (/^sqlite:/i.test(url)) return "sqlite";
  if (/^postgres(ql)?:\/\//i.test(url)) return "postgres";
  if (/^(mysql|mariadb):\/\//i.test(url)) return "mysql";
  throw new Error("database url must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://");
}

/** The SQLite file of a sqlite: URL (":memory:" for an in-memory database). */
export function sqlitePath(url: string): string {
  return url.replace(/^sqlite:(\/\/)?/i, "");
}

/** A knex instance for the URL, with the per-dialect session settings the repositories rely on. */
export function createKnex(options: DatabaseOptions): Knex {
  const dialect = dialectOf(options.url);
  if (dialect === "sqlite") return sqliteKnex(sqlitePath(options.url));
  if (dialect === "postgres") {
    return knexFactory({
      client: "pg",
      connection: options.url,
      pool: { min: 0, max: options.poolMax },
    });
  }
  return knexFactory({
    client: "mysql2",
    connection: mysqlConnection(options.url),
    pool: { min: 0, max: options.poolMax },
  });
}

function mysqlConnection(url: string): Knex.MySql2ConnectionConfig {
  const u = new URL(url.replace(/^mariadb:/i, "mysql:"));
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: decodeURIComponent(u.pathname.replace(/^\//, "")),
    charset: "utf8mb4",
    // Timestamps are stored as epoch milliseconds; keep BIGINT values exact.
    supportBigNumbers: true,
    bigNumberStrings: false,
  };
}

function sqliteKnex(file: string): Knex {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true });
  return knexFactory({
    client: "sqlite3",
    connection: { filename: file },
    useNullAsDefault: true,
    // SQLite allows one writer; one connection keeps knex from queueing writers against itself.
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) => {
        conn.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;", (err) =>
          done(err, conn),
        );
      },
    },
  });
}

interface SqliteConnection {
  exec(sql: string, callback: (err: Error | null) => void): void;
}

/**
 * Brings the schema up to date. Replicas starting together race, first to create knex's
 * bookkeeping tables and then for its migration lock; the losers wait and try again, so the
 * winner migrates once and the others find the work done.
 */
export async function migrate(db: Knex, options: { timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    try {
      await db.migrate.latest({ migrationSource });
      return;
    } catch (err) {
      if (!lostMigrationRace(err) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

function lostMigrationRace(err: unknown): boolean {
  const e = err as { name?: string; errno?: number; message?: string };
  return (
    e?.name === "MigrationLocked" ||
    isUniqueViolation(err) || // PostgreSQL: two CREATE TABLEs of one name
    e?.errno === 1050 || // MySQL ER_TABLE_EXISTS_ERROR
    /already exists/i.test(e?.message ?? "")
  );
}
