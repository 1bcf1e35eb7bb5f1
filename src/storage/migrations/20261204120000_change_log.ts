import type { Knex } from "knex";

// The change log: one row per change, written in the transaction of the change it describes, with
// a version from change_log_head. The head row is updated (and so locked) at the end of each
// writing transaction, so versions are gap-free and in commit order on every database. Replicas'
// caches and gateways' streams (GatewaySyncService.Watch) read the log after the last version
// they saw. It replaces cache_invalidations and cluster_replicas (notices sent after the commit).
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("change_events", (t) => {
    t.bigInteger("version").primary().comment("gap-free, in commit order (change_log_head)");
    t.string("kind", 32).notNullable().comment("api, resources, application, subscription, token, tokens, signing-keys");
    t.text("payload", "mediumtext").notNullable().comment("JSON: the change and the state it left (change-log-repository.ts)");
    t.bigInteger("created_at").notNullable().comment("epoch ms; rows older than the retention are deleted");
    t.index(["created_at"], "change_events_created_at_index");
  });
  await knex.schema.createTable("change_log_head", (t) => {
    t.integer("id").primary().comment("always 1");
    t.bigInteger("version").notNullable().comment("the newest version handed out");
  });
  await knex("change_log_head").insert({ id: 1, version: 0 });
  await knex.schema.dropTableIfExists("cache_invalidations");
  await knex.schema.dropTableIfExists("cluster_replicas");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("change_log_head");
  await knex.schema.dropTable("change_events");
  await knex.schema.createTable("cache_invalidations", (t) => {
    t.bigIncrements("id").primary();
    t.text("payload").notNullable();
    t.bigInteger("created_at").notNullable();
    t.index(["created_at"], "cache_invalidations_created_at_index");
  });
  await knex.schema.createTable("cluster_replicas", (t) => {
    t.string("replica_id", 64).primary();
    t.bigInteger("seen_at").notNullable();
  });
}
