import type { Knex } from "knex";

// Replicas on MySQL/MariaDB say they are alive here; when one stops saying so (killed between a
// commit and its row in cache_invalidations), the others drop their caches.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("cluster_replicas", (t) => {
    t.string("replica_id", 64).primary();
    t.bigInteger("seen_at").notNullable().comment("epoch ms by the database's clock");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("cluster_replicas");
}
