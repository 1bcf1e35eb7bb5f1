import type { Knex } from "knex";

// System clients (callers of this service's RPCs) are OAuth clients of their own kind: tokens,
// secrets and revocation work as for applications, but they are never an application's keys.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("oauth_clients", (t) => {
    t.boolean("system_client").notNullable().defaultTo(false).comment("a caller of this service, not a store application's client");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("oauth_clients", (t) => {
    t.dropColumn("system_client");
  });
}
