import { AlreadyExistsError, FailedPreconditionError } from "../domain/errors.js";

/**
 * Turns a driver's constraint violation into a domain error (unique -> AlreadyExists,
 * foreign key -> FailedPrecondition) for PostgreSQL, MySQL/MariaDB and SQLite alike;
 * anything else is rethrown as it is.
 */
export function normaliseDbError(err: unknown, messages: { duplicate: string; missingReference?: string }): never {
  if (isUniqueViolation(err)) throw new AlreadyExistsError(messages.duplicate);
  if (messages.missingReference && isForeignKeyViolation(err)) {
    throw new FailedPreconditionError(messages.missingReference);
  }
  throw err;
}

interface DriverError {
  code?: string;
  errno?: number;
  message?: string;
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as DriverError;
  return (
    e?.code === "23505" || // PostgreSQL unique_violation
    e?.errno === 1062 || // MySQL ER_DUP_ENTRY
    (e?.code === "SQLITE_CONSTRAINT" && /UNIQUE|PRIMARY KEY/.test(e.message ?? ""))
  );
}

/**
 * The database rolled the whole transaction back to break a deadlock (PostgreSQL
 * deadlock_detected or serialization_failure, MySQL ER_LOCK_DEADLOCK): running it again is the
 * remedy both prescribe.
 */
export function isDeadlock(err: unknown): boolean {
  const e = err as DriverError;
  return e?.code === "40P01" || e?.code === "40001" || e?.errno === 1213;
}

export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as DriverError;
  return (
    e?.code === "23503" || // PostgreSQL foreign_key_violation
    e?.errno === 1452 || // MySQL ER_NO_REFERENCED_ROW_2
    e?.errno === 1451 || // MySQL ER_ROW_IS_REFERENCED_2
    (e?.code === "SQLITE_CONSTRAINT" && /FOREIGN KEY/.test(e.message ?? ""))
  );
}

/**
 * A statement the database did not answer within its deadline (storage/deadlines.ts). Its
 * connection is destroyed (a stalled connection may never answer), so the pool opens a new one.
 */
export class DatabaseDeadlineError extends Error {
  override readonly name = "DatabaseDeadlineError";
  readonly code = "KM_DATABASE_DEADLINE";
}

/** Socket and driver codes of a connection that could not be made or was lost. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "PROTOCOL_CONNECTION_LOST", // mysql2
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "KM_DATABASE_DEADLINE",
  "SQLITE_BUSY", // another connection held the write lock past busy_timeout
]);

/** PostgreSQL SQLSTATEs of a database that cannot answer now (class 08 is all connection exceptions). */
const PG_UNAVAILABLE = new Set([
  "57014", // query_canceled: statement_timeout
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "55P03", // lock_not_available: lock_timeout
  "25P03", // idle_in_transaction_session_timeout
]);

/** MySQL/MariaDB error numbers of the same kind. */
const MYSQL_UNAVAILABLE = new Set([
  1040, // ER_CON_COUNT_ERROR
  1053, // ER_SERVER_SHUTDOWN
  1205, // ER_LOCK_WAIT_TIMEOUT: innodb_lock_wait_timeout
  1317, // ER_QUERY_INTERRUPTED
  1927, // ER_CONNECTION_KILLED (MariaDB)
  1969, // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
  2002, // CR_CONNECTION_ERROR
  2003, // CR_CONN_HOST_ERROR
  2006, // CR_SERVER_GONE_ERROR
  2013, // CR_SERVER_LOST
  3024, // ER_QUERY_TIMEOUT (MySQL max_execution_time)
  4031, // ER_CLIENT_INTERACTION_TIMEOUT (MySQL)
]);

/** The pg driver's errors of a lost or never-made connection carry no code, only these words. */
const PG_CONNECTION_MESSAGES = /Connection terminated|timeout exceeded when trying to connect|is not queryable|Client was closed/i;

/**
 * Whether `err` says the database cannot answer now (down, unreachable, stalled past a deadline,
 * out of connections), as opposed to refusing a statement: such calls fail UNAVAILABLE, to be
 * tried again, never INTERNAL. PostgreSQL, MySQL/MariaDB and SQLite alike, and knex's own timeout
 * waiting for a pool connection.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (err instanceof DatabaseDeadlineError) return true;
  const e = err as (DriverError & { name?: string; sqlState?: string; fatal?: boolean }) | undefined;
  if (!e || typeof e !== "object") return false;
  if (e.name === "KnexTimeoutError" || e.name === "TimeoutError") return true;
  if (typeof e.code === "string" && (CONNECTION_CODES.has(e.code) || PG_UNAVAILABLE.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code))) return true;
  if (typeof e.errno === "number" && MYSQL_UNAVAILABLE.has(e.errno)) return true;
  // mysql2 marks errors that end the connection as fatal.
  if (e.fatal === true) return true;
  return typeof e.message === "string" && PG_CONNECTION_MESSAGES.test(e.message);
}
