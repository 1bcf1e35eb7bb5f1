import type { Knex } from "knex";

// Housekeeping deletes revoked tokens by revocation time: an index range, not a table scan.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("access_tokens", (t) => {
    t.index(["revoked_at"], "access_tokens_revoked_at_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("access_tokens", (t) => {
    t.dropIndex(["revoked_at"], "access_tokens_revoked_at_index");
  });
}
