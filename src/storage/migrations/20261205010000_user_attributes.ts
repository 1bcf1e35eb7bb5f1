import type { Knex } from "knex";

// Users' attributes, given out as OpenID Connect claims (id_token, /oauth2/userinfo) and by
// GetUserClaims.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("users", (t) => {
    t.string("email", 320).notNullable().defaultTo("").comment("the email claim; empty: none");
    t.string("display_name", 255).notNullable().defaultTo("").comment("the name claim; empty: none");
    t.text("roles").nullable().comment("JSON array of role names (the roles claim); null: none");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("users", (t) => {
    t.dropColumn("roles");
    t.dropColumn("display_name");
    t.dropColumn("email");
  });
}
