import type { Knex } from "knex";

// Timestamps are epoch milliseconds (BIGINT) and lists/maps JSON text, the same on every dialect.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("oauth_clients", (t) => {
    t.string("consumer_key", 128).primary().comment("OAuth client_id");
    t.text("secret_ciphertext").notNullable().comment("consumer secret, AES-256-GCM (secret-box.ts)");
    t.string("client_name", 255).notNullable();
    t.text("callback_urls").notNullable().comment("JSON array of redirect URIs");
    t.text("grant_types").notNullable().comment("JSON array of grant type names");
    t.text("scopes").notNullable().comment("JSON array of scopes the client may be granted");
    t.string("token_type", 16).notNullable().comment("OPAQUE or JWT");
    t.integer("app_token_validity").notNullable().comment("seconds");
    t.integer("user_token_validity").notNullable().comment("seconds");
    t.integer("refresh_token_validity").notNullable().comment("seconds");
    t.text("additional_properties").notNullable().comment("JSON object of strings");
    t.string("app_owner", 255).notNullable().defaultTo("").comment("subscriber owning the application");
    t.string("group_id", 255).notNullable().defaultTo("").comment("store application group");
    t.string("key_manager", 100).notNullable().comment("name of the key manager holding the client");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
  await knex.schema.createTable("application_keys", (t) => {
    t.string("application_id", 128).notNullable().comment("store application UUID");
    t.string("key_type", 16).notNullable().comment("PRODUCTION or SANDBOX");
    t.string("consumer_key", 128)
      .notNullable()
      .unique()
      .references("consumer_key")
      .inTable("oauth_clients")
      .onDelete("CASCADE")
      .comment("a client maps to at most one application key");
    t.string("mode", 16).notNullable().comment("CREATED or MAPPED");
    t.string("key_state", 16).notNullable().comment("CREATED, APPROVED, REJECTED or COMPLETED");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.primary(["application_id", "key_type"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("application_keys");
  await knex.schema.dropTable("oauth_clients");
}
