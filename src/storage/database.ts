import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import knexFactory, { type Knex } from "knex";
import { type DatabaseDeadlines, type DatabaseObserver, enforceDeadlines } from "./deadlines.js";
import { migrationSource } from "./migrations/index.js";

export type Dialect = "sqlite" | "postgres" | "mysql";

export interface DatabaseOptions {
  url: string;
  poolMax: number;
  /** The service's bounds on every wait for the database; none for tools (seeding, tests' own checks). */
  deadlines?: DatabaseDeadlines;
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

/** Where knex's own messages go (its drivers' connection errors, deprecations): a pino logger. */
export interface DatabaseLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** Without a logger: JSON lines on stderr, never stdout (which carries the CLI's answers). */
const STDERR_LOGGER: DatabaseLogger = {
  warn: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "warn", ...obj, msg })}\n`),
  error: (obj, msg) => process.stderr.write(`${JSON.stringify({ level: "error", ...obj, msg })}\n`),
  debug: () => {},
};

/** knex prints its messages on stdout (console.log, coloured) unless given these. */
function knexLog(logger: DatabaseLogger): Knex.Config["log"] {
  const text = (message: unknown) => (typeof message === "string" ? message : message instanceof Error ? message.message : JSON.stringify(message));
  return {
    warn: (m: unknown) => logger.warn({ component: "database" }, text(m)),
    error: (m: unknown) => logger.error({ component: "database" }, text(m)),
    deprecate: (method: string, alternative: string) => logger.warn({ component: "database" }, `${method} is deprecated, use ${alternative}`),
    debug: (m: unknown) => logger.debug({ component: "database" }, text(m)),
  };
}

/**
 * A knex instance for the URL, with the per-dialect session settings the repositories rely on and,
 * given `deadlines`, a deadline on every statement and wait for a connection (storage/deadlines.ts);
 * `observer` hears whether the database answers (readiness).
 */
export function createKnex(options: DatabaseOptions, logger: DatabaseLogger = STDERR_LOGGER, observer?: DatabaseObserver): Knex {
  const dialect = dialectOf(options.url);
  const log = knexLog(logger);
  const d = options.deadlines;
  const db =
    dialect === "sqlite"
      ? sqliteKnex(sqlitePath(options.url), log, d?.statementMs ?? DEFAULT_SQLITE_BUSY_MS)
      : dialect === "postgres"
        ? knexFactory({
            client: "pg",
            connection: d ? postgresConnection(options.url, d) : options.url,
            pool: { min: 0, max: options.poolMax, ...poolTimeouts(d) },
            log,
          })
        : knexFactory({
            client: "mysql2",
            connection: mysqlConnection(options.url, d),
            pool: { min: 0, max: options.poolMax, ...poolTimeouts(d), ...(d ? { afterCreate: mysqlSessionTimeouts(d.statementMs) } : {}) },
            log,
          });
  // SQLite's deadline is its busy timeout: a statement there waits on the write lock, never on a network.
  if (d || observer) enforceDeadlines(db, dialect === "sqlite" ? undefined : d?.statementMs, observer);
  return db;
}

const DEFAULT_SQLITE_BUSY_MS = 5000;

/**
 * tarn's bounds: waiting for a connection (acquire), opening one (create), and how long an unused
 * one is kept. A connection whose statement passed its deadline is destroyed, not reused.
 */
function poolTimeouts(d: DatabaseDeadlines | undefined): Knex.PoolConfig {
  if (!d) return {};
  return {
    acquireTimeoutMillis: d.acquireMs,
    createTimeoutMillis: d.connectMs,
    idleTimeoutMillis: d.idleMs,
    // A failed create is retried quickly: the database may be back a moment later.
    createRetryIntervalMillis: 100,
    propagateCreateError: true,
  };
}

/**
 * PostgreSQL: the server ends a statement past statement_timeout, and a session left idle inside a
 * transaction (its client gone behind a stalled network) past the same bound, releasing its locks.
 * TCP keepalive finds a peer that vanished.
 */
function postgresConnection(url: string, d: DatabaseDeadlines): Knex.PgConnectionConfig {
  return {
    connectionString: url,
    statement_timeout: d.statementMs,
    idle_in_transaction_session_timeout: Math.max(d.statementMs, 1000),
    connectionTimeoutMillis: d.connectMs,
    keepAlive: true,
  } as Knex.PgConnectionConfig;
}

/**
 * MySQL/MariaDB: each new connection is given the server-side deadline its server knows —
 * MariaDB's max_statement_time (seconds, every statement), MySQL's max_execution_time
 * (milliseconds, SELECTs only) — and a lock wait bound (innodb_lock_wait_timeout, whole seconds).
 */
function mysqlSessionTimeouts(statementMs: number) {
  const lockWaitSeconds = Math.max(1, Math.ceil(statementMs / 1000));
  return (conn: MysqlConnection, done: (err: Error | null, conn: unknown) => void) => {
    conn.query("select version() as v", (err, rows) => {
      if (err) return done(err, conn);
      const mariadb = /mariadb/i.test(String(rows?.[0]?.v ?? ""));
      const deadline = mariadb ? `max_statement_time = ${statementMs / 1000}` : `max_execution_time = ${statementMs}`;
      conn.query(`set session ${deadline}, innodb_lock_wait_timeout = ${lockWaitSeconds}`, (setErr) => done(setErr, conn));
    });
  };
}

interface MysqlConnection {
  query(sql: string, callback: (err: Error | null, rows?: Array<{ v?: unknown }>) => void): void;
}

function mysqlConnection(url: string, d: DatabaseDeadlines | undefined): Knex.MySql2ConnectionConfig {
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
    ...(d ? { connectTimeout: d.connectMs, enableKeepAlive: true } : {}),
  };
}

function sqliteKnex(file: string, log: Knex.Config["log"], busyTimeoutMs: number): Knex {
  if (file !== ":memory:") ownerOnly(file);
  return knexFactory({
    client: "sqlite3",
    log,
    connection: { filename: file },
    useNullAsDefault: true,
    // SQLite allows one writer; one connection keeps knex from queueing writers against itself.
    pool: {
      min: 1,
      max: 1,
      afterCreate: (conn: SqliteConnection, done: (err: Error | null, conn: unknown) => void) => {
        // synchronous = FULL: a commit is on disk before it is acknowledged, power loss included
        // (NORMAL would survive a process crash but not an OS crash). Group commit keeps the
        // fsyncs few under load.
        conn.exec(
          `PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = ${Math.trunc(busyTimeoutMs)}; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;`,
          (err) => done(err, conn),
        );
      },
    },
  });
}

/**
 * The SQLite file holds every client's (encrypted) secret and token hashes: its directory is
 * made 0700 when this creates it, and the file 0600 (SQLite gives its -wal and -shm files the
 * database file's mode). A file already there is brought down to 0600.
 */
function ownerOnly(file: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, "a", 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
}

interface SqliteConnection {
  exec(sql: string, callback: (err: Error | null) => void): void;
}

/**
 * Brings the schema up to date. On PostgreSQL and MySQL, replicas starting together take turns
 * under a server-side lock, so one migrates and the others find the work done. SQLite serves one
 * process per file; a second process that starts at the same moment waits for knex's lock.
 */
export async function migrate(db: Knex, options: { timeoutMs?: number } = {}): Promise<void> {
  if (
    await withMigrationLock(db, async () => {
      // Holding the server-side lock, nobody else is migrating: a set knex lock is a crashed
      // replica's leftover and must not block start-up forever.
      await db.migrate.forceFreeMigrationsLock({ migrationSource });
      await db.migrate.latest({ migrationSource });
    })
  ) {
    return;
  }
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    try {
      await db.migrate.latest({ migrationSource });
      return;
    } catch (err) {
      if ((err as Error).name !== "MigrationLocked" || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

/**
 * Migrates the schema of the service's database `db`. Migrations may rewrite large tables, so on
 * PostgreSQL and MySQL they run on a connection of their own without the service's statement
 * deadlines; SQLite's deadline is only its busy timeout, which migrations wait on like any writer.
 */
export async function prepareSchema(db: Knex, options: DatabaseOptions, logger?: DatabaseLogger): Promise<void> {
  if (!options.deadlines || dialectOf(options.url) === "sqlite") return migrate(db);
  const unbounded = createKnex({ url: options.url, poolMax: 2 }, logger);
  try {
    await migrate(unbounded);
  } finally {
    await unbounded.destroy();
  }
}

const LOCK_NAME = "keymanager_migrations";
// pg_advisory_lock takes a bigint; any fixed number unique to this service will do.
const PG_LOCK_KEY = 7_215_402_117;

/**
 * Runs `work` while holding a server-side lock (PostgreSQL advisory lock, MySQL GET_LOCK) on a
 * connection of its own, so replicas never race inside knex's own bookkeeping, where MySQL's
 * implicit commits can leave knex's lock row set. Says false, running nothing, for SQLite.
 */
async function withMigrationLock(db: Knex, work: () => Promise<unknown>): Promise<boolean> {
  const config = db.client.config as Knex.Config;
  if (config.client !== "pg" && config.client !== "mysql2") return false;
  // A connection outside the service's pool: knex's migrator needs several of the pool's own.
  const lock = knexFactory({ client: config.client, connection: config.connection, pool: { min: 1, max: 1 } });
  try {
    await lock.transaction(async (trx) => {
      if (config.client === "pg") {
        // Transaction-scoped: released by the commit or by the connection's end, whatever happens.
        await trx.raw("select pg_advisory_xact_lock(?)", [PG_LOCK_KEY]);
      } else {
        const [rows] = await trx.raw("select get_lock(?, 120) as acquired", [LOCK_NAME]);
        if (Number(rows?.[0]?.acquired) !== 1) throw new Error("timed out waiting for the migration lock");
      }
      try {
        await work();
      } finally {
        if (config.client === "mysql2") await trx.raw("select release_lock(?)", [LOCK_NAME]);
      }
    });
  } finally {
    await lock.destroy();
  }
  return true;
}
