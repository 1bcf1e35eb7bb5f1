import type { Knex } from "knex";
import { exactCollation } from "./20261204000000_exact_identifiers.js";

// The authorization code grant (RFC 6749 section 4.1, PKCE RFC 7636): public clients, the codes
// handed to the user agent (only their hashes), the login sessions of the authorization pages
// and the consents users gave to clients.
export async function up(knex: Knex): Promise<void> {
  // knex names the connection's charset on MySQL/MariaDB tables, which brings its case-insensitive
  // default collation: the identifiers here must compare (and join their foreign keys) exactly.
  const collation = /mysql/i.test(String(knex.client.config.client)) ? await exactCollation(knex) : undefined;
  const exact = (t: Knex.CreateTableBuilder) => {
    if (collation) t.collate(collation);
  };
  await knex.schema.alterTable("oauth_clients", (t) => {
    t.string("token_endpoint_auth_method", 32)
      .notNullable()
      .defaultTo("client_secret_basic")
      .comment("client_secret_basic (a confidential client, with a secret) or none (a public client: no secret, PKCE)");
  });
  await knex.schema.createTable("authorization_codes", (t) => {
    exact(t);
    t.string("code_hash", 64).primary().comment("SHA-256 (base64url) of the code; the code itself is never stored");
    t.string("consumer_key", 128)
      .notNullable()
      .references("consumer_key")
      .inTable("oauth_clients")
      .onDelete("CASCADE")
      .comment("the client the code was issued to");
    t.string("username", 255).notNullable().references("username").inTable("users").onDelete("CASCADE").comment("the user who authorized the client");
    t.text("scopes").notNullable().comment("JSON array of the granted scopes");
    t.text("redirect_uri").notNullable().comment("the redirect_uri the authorization request named; empty when it named none");
    t.string("code_challenge", 128).notNullable().comment("PKCE S256 challenge; empty when none was sent (only where PKCE is not required)");
    t.text("nonce").notNullable().comment("OpenID Connect nonce of the request; empty when none");
    t.string("family_id", 36).notNullable().comment("token family of the tokens the code gives: revoked if the code is used again");
    t.bigInteger("auth_time").notNullable().comment("epoch ms the user logged in");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("expires_at").notNullable().comment("epoch ms; at most [authorization] code_seconds after created_at");
    t.bigInteger("used_at").nullable().comment("epoch ms the code was exchanged; a code is spent once");
    t.index(["expires_at"], "authorization_codes_expires_at_index");
  });
  await knex.schema.createTable("login_sessions", (t) => {
    exact(t);
    t.string("session_hash", 64).primary().comment("SHA-256 (base64url) of the session cookie's value");
    t.string("username", 255).notNullable().references("username").inTable("users").onDelete("CASCADE").comment("the logged-in user");
    t.bigInteger("auth_time").notNullable().comment("epoch ms the user logged in");
    t.bigInteger("expires_at").notNullable().comment("epoch ms; [authorization] session_seconds after the login");
    t.index(["username"], "login_sessions_username_index");
    t.index(["expires_at"], "login_sessions_expires_at_index");
  });
  await knex.schema.createTable("oauth_consents", (t) => {
    exact(t);
    t.string("consumer_key", 128)
      .notNullable()
      .references("consumer_key")
      .inTable("oauth_clients")
      .onDelete("CASCADE")
      .comment("the client the user consented to");
    t.string("username", 255).notNullable().references("username").inTable("users").onDelete("CASCADE").comment("the user who consented");
    t.text("scopes").notNullable().comment("JSON array of the scopes consented to, over all approvals");
    t.bigInteger("created_at").notNullable();
    t.bigInteger("updated_at").notNullable();
    t.primary(["consumer_key", "username"]);
    t.index(["username"], "oauth_consents_username_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("oauth_consents");
  await knex.schema.dropTable("login_sessions");
  await knex.schema.dropTable("authorization_codes");
  await knex.schema.alterTable("oauth_clients", (t) => {
    t.dropColumn("token_endpoint_auth_method");
  });
}
