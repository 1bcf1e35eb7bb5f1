import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("api_resources", (t) => {
    t.string("api_id", 255).primary().comment("publisher's API identifier");
    t.text("resources", "mediumtext").notNullable().comment("JSON array of {uriTemplate, httpVerb, authLevel, scopes, throttlingTier}");
    t.text("properties").notNullable().comment("JSON object of strings");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("api_resources");
}
