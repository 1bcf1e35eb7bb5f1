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
      // Two at least: migrations hold one connection for their lock and work on another.
      pool: { min: 0, max: Math.max(2, options.poolMax) },
    });
  }
  return knexFactory({
    client: "mysql2",
    connection: mysqlConnection(options.url),
    pool: { min: 0, max: Math.max(2, options.poolMax) },
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
      await withMigrationLock(db, () => db.migrate.latest({ migrationSource }));
      return;
    } catch (err) {
      if (!lostMigrationRace(err) || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

const LOCK_NAME = "keymanager_migrations";
// pg_advisory_lock takes a bigint; any fixed number unique to this service will do.
const PG_LOCK_KEY = 7_215_402_117;

/**
 * Runs `work` while holding a server-side lock (PostgreSQL advisory lock, MySQL GET_LOCK) on a
 * connection of its own, so replicas never race inside knex's own bookkeeping, where MySQL's
 * implicit commits can leave knex's lock row set. SQLite has no other process worth waiting for
 * beyond its file lock, and relies on the retry above.
 */
async function withMigrationLock<T>(db: Knex, work: () => Promise<T>): Promise<T> {
  const client = db.client.config.client as string;
  if (client !== "pg" && client !== "mysql2") return work();
  const connection = await db.client.acquireConnection();
  try {
    if (client === "pg") await db.raw("select pg_advisory_lock(?)", [PG_LOCK_KEY]).connection(connection);
    else {
      const [rows] = await db.raw("select get_lock(?, 120) as acquired", [LOCK_NAME]).connection(connection);
      if (Number(rows?.[0]?.acquired) !== 1) throw new Error("timed out waiting for the migration lock");
    }
    return await work();
  } finally {
    const unlock = client === "pg" ? db.raw("select pg_advisory_unlock(?)", [PG_LOCK_KEY]) : db.raw("select release_lock(?)", [LOCK_NAME]);
    await unlock.connection(connection).catch(() => undefined);
    await db.client.releaseConnection(connection);
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
