import type { Knex } from "knex";
import { exactCollation } from "./20261204000000_exact_identifiers.js";

// Outside issuers whose JWTs the token endpoint accepts (JWT bearer grant, token exchange), and
// the assertions already used (RFC 7523 section 3: a jti is accepted once), kept until they expire.
export async function up(knex: Knex): Promise<void> {
  // Issuers compare exactly on MySQL/MariaDB too (see exact_identifiers): the collation is named,
  // since a server's default for utf8mb4 may ignore case whatever the database's default says.
  const collation = /mysql/i.test(String(knex.client.config.client)) ? await exactCollation(knex) : undefined;
  await knex.schema.createTable("trusted_issuers", (t) => {
    if (collation) {
      t.charset("utf8mb4");
      t.collate(collation);
    }
    t.string("issuer", 255).primary().comment("the JWTs' iss, without trailing slashes");
    t.text("jwks_uri").notNullable().comment("where its JWKS is fetched; empty when jwk is set");
    t.text("jwk").notNullable().comment("one public JWK as JSON; empty when jwks_uri is set");
    t.text("allowed_subjects").notNullable().comment("JSON list of subjects accepted; * is any");
    t.text("allowed_scopes").notNullable().comment("JSON list of scopes a token from its JWTs may carry");
    t.bigInteger("max_token_seconds").notNullable().comment("longest a token issued from its JWTs lives; 0: the client's");
    t.bigInteger("max_assertion_seconds").notNullable().comment("longest its JWTs may live; 0: the default");
    t.string("audience", 2048).notNullable().comment("aud its JWTs must name; empty: this key manager's issuer or token endpoint");
    t.string("description", 1024).notNullable();
    t.bigInteger("created_at").notNullable().comment("epoch ms");
    t.bigInteger("updated_at").notNullable().comment("epoch ms");
  });
  await knex.schema.createTable("used_assertions", (t) => {
    if (collation) {
      t.charset("utf8mb4");
      t.collate(collation);
    }
    t.string("jti_hash", 64).primary().comment("SHA-256 hex of issuer, newline, jti");
    t.bigInteger("expires_at").notNullable().comment("epoch ms: the JWT's exp; the row may go after it");
    t.index(["expires_at"], "used_assertions_expires_at_index");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("used_assertions");
  await knex.schema.dropTable("trusted_issuers");
}
