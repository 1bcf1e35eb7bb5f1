import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("application_keys", (t) => {
    t.string("application_name", 255).notNullable().defaultTo("").comment("store application name; empty: the client name");
    t.string("application_tier", 100).notNullable().defaultTo("Unlimited").comment("application throttling tier");
  });
  await knex.schema.createTable("access_tokens", (t) => {
    t.string("id", 36).primary().comment("token id shown in listings; not the token");
    t.string("token_hash", 64).notNullable().unique().comment("SHA-256 hex of the access token; the token is never stored");
    t.string("consumer_key", 128).notNullable().references("consumer_key").inTable("oauth_clients").onDelete("CASCADE");
    t.string("end_user", 255).notNullable().defaultTo("").comment("resource owner; empty for application tokens");
    t.text("scopes").notNullable().comment("JSON array of granted scopes");
    t.string("token_type", 16).notNullable().comment("OPAQUE or JWT");
    t.string("grant_type", 100).notNullable();
    t.bigInteger("issued_at").notNullable();
    t.bigInteger("expires_at").notNullable();
    t.bigInteger("revoked_at").nullable();
    t.string("refresh_hash", 64).nullable().unique().comment("SHA-256 hex of the refresh token issued with it");
    t.bigInteger("refresh_expires_at").nullable();
    t.bigInteger("refresh_used_at").nullable().comment("when the refresh token was exchanged (rotation)");
    t.string("family_id", 36).notNullable().comment("tokens descending from one grant; reuse of a spent refresh token revokes the family");
    t.index(["consumer_key", "issued_at"]);
    t.index(["family_id"]);
    t.index(["end_user"]);
    t.index(["expires_at"]);
  });
  await knex.schema.createTable("users", (t) => {
    t.string("username", 255).primary();
    t.string("password_hash", 255).notNullable().comment("scrypt$N$r$p$salt$hash");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
  });
  await knex.schema.createTable("apis", (t) => {
    t.string("api_id", 255).primary();
    t.string("name", 255).notNullable();
    t.string("context", 255).notNullable();
    t.string("version", 100).notNullable();
    t.string("publisher", 255).notNullable().defaultTo("");
    t.string("api_tier", 100).notNullable().defaultTo("");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["context", "version"]);
  });
  await knex.schema.createTable("subscriptions", (t) => {
    t.string("id", 36).primary();
    t.string("application_id", 128).notNullable();
    t.string("api_id", 255).notNullable().references("api_id").inTable("apis").onDelete("CASCADE");
    t.string("tier", 100).notNullable();
    t.string("state", 32).notNullable().comment("UNBLOCKED, BLOCKED, PROD_ONLY_BLOCKED, ON_HOLD, REJECTED, TIER_UPDATE_PENDING");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.unique(["application_id", "api_id"]);
    t.index(["api_id"]);
  });
  await knex.schema.createTable("signing_keys", (t) => {
    t.string("kid", 64).primary();
    t.string("alg", 16).notNullable().comment("ES256 or RS256");
    t.text("private_jwk").notNullable().comment("AES-256-GCM encrypted JWK");
    t.text("public_jwk").notNullable();
    t.bigInteger("created_at").notNullable();
    t.bigInteger("retired_at").nullable().comment("no longer signs; published until its tokens expire");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("signing_keys");
  await knex.schema.dropTable("subscriptions");
  await knex.schema.dropTable("apis");
  await knex.schema.dropTable("users");
  await knex.schema.dropTable("access_tokens");
  await knex.schema.alterTable("application_keys", (t) => {
    t.dropColumn("application_tier");
    t.dropColumn("application_name");
  });
}
