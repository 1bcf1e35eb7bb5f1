import type { Knex } from "knex";

// MySQL/MariaDB compare text by the column's collation, and their default (utf8mb4_general_ci,
// PAD SPACE) ignores case and trailing spaces: `ABC` found the client `abc`, `alice ` the user
// `alice`. Identifiers must compare exactly on every database, as they do on PostgreSQL and SQLite,
// so every table (and the database's default, for tables made later) takes a binary collation
// that also keeps trailing spaces: MariaDB's utf8mb4_nopad_bin, MySQL 8's utf8mb4_0900_bin.
// Rewrites each table once (ALTER TABLE ... CONVERT TO copies it).

export async function up(knex: Knex): Promise<void> {
  if (!isMysql(knex)) return;
  await convert(knex, await exactCollation(knex));
}

/**
 * Kept: back under a case-insensitive collation, identifiers that now differ only by case or
 * trailing spaces would collide in unique keys, and the earlier schema works as well with exact ones.
 */
export async function down(_knex: Knex): Promise<void> {}

function isMysql(knex: Knex): boolean {
  return /mysql/i.test(String(knex.client.config.client));
}

/** The binary, NO PAD collation this server has. */
export async function exactCollation(knex: Knex): Promise<string> {
  const [rows] = (await knex.raw("SHOW COLLATION WHERE Collation IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin')")) as [Array<{ Collation: string }>];
  const names = rows.map((r) => r.Collation);
  const found = ["utf8mb4_nopad_bin", "utf8mb4_0900_bin"].find((c) => names.includes(c));
  if (!found) throw new Error("this MySQL/MariaDB server has no binary NO PAD collation (utf8mb4_nopad_bin, MariaDB 10.2+; utf8mb4_0900_bin, MySQL 8+)");
  return found;
}

interface ForeignKey {
  name: string;
  tbl: string;
  ref: string;
  cols: string;
  refcols: string;
  onUpdate: string;
  onDelete: string;
}

const RULES = new Set(["CASCADE", "RESTRICT", "NO ACTION", "SET NULL", "SET DEFAULT"]);

/**
 * Converts the tables not yet in `collation` (every table, the first time). knex names the
 * connection's character set in each CREATE TABLE, which gives a new table that character set's
 * default collation (case-insensitive) rather than the database's: tables made by later migrations
 * are converted by a later migration calling this again.
 */
export async function convert(knex: Knex, collation: string): Promise<void> {
  const [[{ name }]] = (await knex.raw("SELECT DATABASE() AS name")) as [[{ name: string }]];
  await knex.raw(`ALTER DATABASE ?? CHARACTER SET utf8mb4 COLLATE ${collation}`, [name]);
  const [tables] = (await knex.raw(
    "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'knex\\_%' AND table_collation <> ?",
    [collation],
  )) as [Array<{ name: string }>];
  if (tables.length === 0) return;
  // MariaDB will not change the collation of a column a foreign key joins, checks off or not: the
  // keys are dropped, the tables converted, and the keys made again as they were.
  const [keys] = (await knex.raw(
    `SELECT rc.constraint_name AS name, rc.table_name AS tbl, rc.referenced_table_name AS ref,
            rc.update_rule AS onUpdate, rc.delete_rule AS onDelete,
            GROUP_CONCAT(k.column_name ORDER BY k.ordinal_position) AS cols,
            GROUP_CONCAT(k.referenced_column_name ORDER BY k.ordinal_position) AS refcols
       FROM information_schema.referential_constraints rc
       JOIN information_schema.key_column_usage k
         ON k.constraint_schema = rc.constraint_schema AND k.constraint_name = rc.constraint_name AND k.table_name = rc.table_name
      WHERE rc.constraint_schema = DATABASE()
      GROUP BY rc.constraint_name, rc.table_name, rc.referenced_table_name, rc.update_rule, rc.delete_rule`,
  )) as [ForeignKey[]];
  await knex.raw("SET SESSION foreign_key_checks = 0");
  try {
    for (const key of keys) await knex.raw("ALTER TABLE ?? DROP FOREIGN KEY ??", [key.tbl, key.name]);
    for (const table of tables) {
      await knex.raw(`ALTER TABLE ?? CONVERT TO CHARACTER SET utf8mb4 COLLATE ${collation}`, [table.name]);
    }
    for (const key of keys) {
      if (!RULES.has(key.onDelete) || !RULES.has(key.onUpdate)) throw new Error(`foreign key ${key.name}: unexpected rule`);
      const cols = key.cols.split(",");
      const refcols = key.refcols.split(",");
      await knex.raw(
        `ALTER TABLE ?? ADD CONSTRAINT ?? FOREIGN KEY (${cols.map(() => "??").join(", ")}) REFERENCES ?? (${refcols.map(() => "??").join(", ")}) ON DELETE ${key.onDelete} ON UPDATE ${key.onUpdate}`,
        [key.tbl, key.name, ...cols, key.ref, ...refcols],
      );
    }
  } finally {
    await knex.raw("SET SESSION foreign_key_checks = 1");
  }
}
