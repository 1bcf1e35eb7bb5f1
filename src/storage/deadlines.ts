import type { Knex } from "knex";
import { DatabaseDeadlineError, isDatabaseUnavailable as isUnavailable } from "./errors.js";

/** How long the service waits on its database, each bound in milliseconds. */
export interface DatabaseDeadlines {
  /** One statement (the server cancels it too: PostgreSQL statement_timeout, MariaDB max_statement_time; SQLite busy_timeout). */
  statementMs: number;
  /** Waiting for a connection of the pool (creating one included). */
  acquireMs: number;
  /** Opening one connection. */
  connectMs: number;
  /** An unused connection is closed after this. */
  idleMs: number;
}

/** What a statement's outcome says of the database: answered, or failed to answer. */
export interface DatabaseObserver {
  answered(): void;
  failed(err: unknown): void;
}

/** The parts of knex's client (knex/lib/client.js) every statement and connection passes through. */
interface KnexClientInternals {
  _query(connection: DriverConnection, query: unknown): Promise<unknown>;
  acquireConnection(): Promise<DriverConnection>;
}

interface DriverConnection {
  /** knex's mark of a connection the pool must destroy instead of reusing. */
  __knex__disposed?: unknown;
  /** mysql2 */
  destroy?: () => void;
  /** pg: its socket */
  connection?: { stream?: { destroy(): void } };
}

/**
 * Every statement of `db` (transactions' BEGIN and COMMIT included: knex sends them all through
 * its client's `_query`) gets a client-side deadline of `statementMs`: past it the caller gets
 * DatabaseDeadlineError and the connection is destroyed rather than returned to the pool. The
 * server-side statement timeout does not help when the network, not the server, is stuck.
 * `observer` hears each statement's and each pool acquisition's outcome (readiness).
 */
export function enforceDeadlines(db: Knex, statementMs: number | undefined, observer?: DatabaseObserver): void {
  const client = db.client as unknown as KnexClientInternals;
  const driverQuery = client._query.bind(client);
  const acquire = client.acquireConnection.bind(client);
  const heard = <T>(work: Promise<T>): Promise<T> =>
    observer
      ? work.then(
          (value) => {
            observer.answered();
            return value;
          },
          (err: unknown) => {
            // A refusal (a duplicate key, a bad statement) is an answer too.
            if (isUnavailable(err)) observer.failed(err);
            else observer.answered();
            throw err;
          },
        )
      : work;
  client._query = (connection, query) =>
    heard(statementMs === undefined ? driverQuery(connection, query) : withDeadline(driverQuery(connection, query), connection, statementMs));
  client.acquireConnection = () => heard(acquire());
}

function withDeadline<T>(work: Promise<T>, connection: DriverConnection, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new DatabaseDeadlineError(`the database did not answer within ${ms} ms`);
      connection.__knex__disposed = err;
      destroyConnection(connection);
      reject(err);
    }, ms);
  });
  // The driver's own rejection, once the connection is destroyed, has nobody waiting for it.
  work.catch(() => {});
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** Closes the socket at once: a graceful end would wait on the stalled peer. */
function destroyConnection(connection: DriverConnection): void {
  try {
    if (typeof connection.destroy === "function") connection.destroy();
    else connection.connection?.stream?.destroy();
  } catch {
    // Already closed.
  }
}
