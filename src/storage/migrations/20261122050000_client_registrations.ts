import type { Knex } from "knex";

// Clients an external key manager holds: how to manage them there (RFC 7592). The client's own
// row in oauth_clients (key_manager names the external key manager) carries its settings.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("client_registrations", (t) => {
    t.string("consumer_key", 128)
      .primary()
      .references("consumer_key")
      .inTable("oauth_clients")
      .onDelete("CASCADE")
      .comment("the client's id at the external key manager");
    t.string("key_manager", 100).notNullable().comment("name of the external key manager");
    t.text("registration_client_uri").notNullable().comment("RFC 7592 client configuration endpoint");
    t.text("access_token_ciphertext").notNullable().comment("RFC 7592 registration access token, AES-256-GCM (secret-box.ts)");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("client_registrations");
}
