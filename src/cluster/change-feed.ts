import type { Knex } from "knex";
import type { Logger } from "pino";
import type { ChangeEvents } from "../domain/change-events.js";
import { ChangeLogRepository, entriesOfNotice } from "../storage/change-log-repository.js";
import type { Metrics } from "../observability/metrics.js";
import { dialectOf } from "../storage/database.js";
import { ChangeLogReader } from "./change-log-reader.js";
import { PostgresWaker } from "./postgres-waker.js";

/**
 * Keeps the caches of replicas that share one database in step, and feeds the gateways' streams:
 * one reader of the change log (written in each change's own transaction), woken by this
 * replica's commits and by the database.
 */
export interface ChangeFeed {
  readonly reader: ChangeLogReader;
  /** Stops reading. */
  close(): Promise<void>;
}

export interface ChangeFeedOptions {
  db: Knex;
  /** The database URL: its dialect chooses how the reader is woken. */
  url: string;
  events: ChangeEvents;
  pollIntervalMs: number;
  logger: Logger;
  /** Lag of other replicas' changes and cache flushes. */
  metrics?: Metrics;
}

/** PostgreSQL: even with NOTIFY, the log is read this often in case a notice was lost. */
const POSTGRES_POLL_MS = 5_000;

/**
 * PostgreSQL: LISTEN/NOTIFY (sent with each commit, carrying its entries when they are small: then
 * no read of the log is needed), and a read every 5 s. MySQL/MariaDB: a read
 * every pollIntervalMs. SQLite serves one process per file: its own commits wake the reader.
 */
export async function startChangeFeed(options: ChangeFeedOptions): Promise<ChangeFeed> {
  const log = new ChangeLogRepository(options.db);
  const reader = new ChangeLogReader(log, options.events, options.logger, await log.head(), options.metrics);
  const dialect = dialectOf(options.url);
  const waker =
    dialect === "postgres"
      ? await PostgresWaker.start(
          options.url,
          () => reader.wake(),
          options.logger,
          (payload) => reader.offer(entriesOfNotice(payload)),
        )
      : undefined;
  const every = dialect === "postgres" ? POSTGRES_POLL_MS : dialect === "mysql" ? options.pollIntervalMs : undefined;
  const timer = every === undefined ? undefined : setInterval(() => reader.wake(), every).unref();
  return {
    reader,
    close: async () => {
      clearInterval(timer);
      await waker?.close();
      await reader.close();
    },
  };
}
