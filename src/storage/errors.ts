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
