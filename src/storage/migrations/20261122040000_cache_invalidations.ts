import type { Knex } from "knex";

// Changes of one replica that the others' caches must drop, for databases without NOTIFY
// (MySQL/MariaDB): every replica reads the rows after the last id it has seen. Rows are kept a
// few minutes; a replica that finds ids missing drops its whole cache.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("cache_invalidations", (t) => {
    t.bigIncrements("id").primary();
    t.text("payload").notNullable().comment("JSON: the writing replica and its changes");
    t.bigInteger("created_at").notNullable().comment("epoch ms; rows older than a few minutes are deleted");
    t.index(["created_at"], "cache_invalidations_created_at_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("cache_invalidations");
}
