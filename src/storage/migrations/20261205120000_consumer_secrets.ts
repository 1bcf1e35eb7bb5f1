import type { Knex } from "knex";
import { exactCollation } from "./20261204000000_exact_identifiers.js";

// Consumer secrets added to a client beside the one in oauth_clients (WSO2 4.7 multiple consumer
// secrets). Shown once when made, so only their SHA-256 is kept, like tokens.
export async function up(knex: Knex): Promise<void> {
  // MySQL/MariaDB: the exact collation oauth_clients has (a foreign key joins columns of one collation).
  const collation = /mysql/i.test(String(knex.client.config.client)) ? await exactCollation(knex) : undefined;
  await knex.schema.createTable("consumer_secrets", (t) => {
    if (collation) t.collate(collation);
    t.string("secret_id", 36).primary().comment("UUID naming the secret in RevokeConsumerSecret");
    t.string("consumer_key", 128)
      .notNullable()
      .references("consumer_key")
      .inTable("oauth_clients")
      .onDelete("CASCADE")
      .comment("the client the secret authenticates");
    t.string("secret_hash", 64).notNullable().comment("SHA-256 of the secret, hex");
    t.string("hint", 8).notNullable().comment("the secret's last 4 characters");
    t.string("description", 255).notNullable().defaultTo("");
    t.bigInteger("created_at").notNullable().comment("epoch ms");
    t.bigInteger("expires_at").nullable().comment("epoch ms; null: until revoked");
    t.index(["consumer_key", "created_at"], "consumer_secrets_by_client");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("consumer_secrets");
}
