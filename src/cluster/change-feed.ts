import type { Knex } from "knex";
import type { Logger } from "pino";
import type { ChangeEvents } from "../domain/change-events.js";
import { dialectOf } from "../storage/database.js";
import type { Metrics } from "../observability/metrics.js";
import { PollingChangeFeed } from "./polling-change-feed.js";
import { PostgresChangeFeed } from "./postgres-change-feed.js";

/**
 * Keeps the caches of replicas that share one database in step: every change committed here is
 * told to the others, and theirs are published here (as "peer" changes, so caches drop what they
 * name). When changes may have been missed, caches drop everything ({ kind: "all" }).
 */
export interface ChangeFeed {
  /** Sends what is still waiting (briefly) and stops listening. */
  close(): Promise<void>;
}

export interface ChangeFeedOptions {
  db: Knex;
  /** The database URL: its dialect chooses the feed. */
  url: string;
  events: ChangeEvents;
  pollIntervalMs: number;
  logger: Logger;
  /** Lag of other replicas' changes and cache flushes. */
  metrics?: Metrics;
}

/**
 * PostgreSQL: LISTEN/NOTIFY. MySQL/MariaDB: a table read every pollIntervalMs. SQLite serves one
 * process per file: nothing to tell anyone.
 */
export async function startChangeFeed(options: ChangeFeedOptions): Promise<ChangeFeed> {
  switch (dialectOf(options.url)) {
    case "postgres":
      return PostgresChangeFeed.start(options);
    case "mysql":
      return PollingChangeFeed.start(options);
    case "sqlite":
      return { close: async () => undefined };
  }
}
