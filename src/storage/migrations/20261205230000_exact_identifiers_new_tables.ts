import type { Knex } from "knex";
import { convert, exactCollation } from "./20261204000000_exact_identifiers.js";

// MySQL/MariaDB: the tables made after 20261204000000_exact_identifiers (change log, revocations,
// authorization codes, sessions, consents, consumer secrets, scopes, trusted issuers) took
// utf8mb4's default, case-insensitive collation (knex names the connection's character set in
// CREATE TABLE), so their identifiers compared without case. They take the exact collation too.
// A migration that makes tables should end the same way (or name the collation, as some do).

export async function up(knex: Knex): Promise<void> {
  if (!/mysql/i.test(String(knex.client.config.client))) return;
  await convert(knex, await exactCollation(knex));
}

/** Kept: see 20261204000000_exact_identifiers's down. */
export async function down(_knex: Knex): Promise<void> {}
