import type { Knex } from "knex";

// Revocations of every token of a consumer key or of an end user, kept while a token they refuse
// may still be alive: gateways get them in the Watch snapshot (the change log keeps their events
// only for its retention). One row per consumer key or end user: a later revocation covers every
// token an earlier one did, so the row keeps the latest time and the longest horizon.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("token_revocations", (t) => {
    t.string("subject_kind", 16).notNullable().comment("consumer_key or end_user");
    t.string("subject", 255).notNullable().comment("the consumer key or the end user");
    t.bigInteger("revoked_at").notNullable().comment("epoch ms: tokens issued at or before it are revoked");
    t.bigInteger("keep_until").notNullable().comment("epoch ms: no token it refuses lives past it; housekeeping deletes it then");
    t.primary(["subject_kind", "subject"]);
    t.index(["keep_until"], "token_revocations_keep_until_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("token_revocations");
}
