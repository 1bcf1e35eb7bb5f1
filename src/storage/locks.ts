import type { Knex } from "knex";

/** Row locking in a transaction, where asked: `get(id, LOCK)` in a read-modify-write. */
export interface ReadOptions {
  forUpdate?: boolean;
}

export const LOCK: ReadOptions = { forUpdate: true };

/**
 * Makes a SELECT lock the rows it reads until its transaction ends, so a read-modify-write loses
 * no concurrent write (both take turns on the row): FOR NO KEY UPDATE on PostgreSQL (it does not
 * hold up other writers' foreign-key checks against the row), FOR UPDATE on MySQL/MariaDB (a
 * locking read there also sees the latest committed row, not the transaction's snapshot). SQLite
 * needs nothing: the service holds one connection per file, so transactions already take turns.
 */
export function lockRows<Q extends Knex.QueryBuilder>(query: Q, options: ReadOptions): Q {
  if (!options.forUpdate) return query;
  const client = (query.client.config as Knex.Config).client;
  if (client === "pg") query.forNoKeyUpdate();
  else if (client === "mysql2") query.forUpdate();
  return query;
}
