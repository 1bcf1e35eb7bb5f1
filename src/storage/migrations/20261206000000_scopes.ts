import type { Knex } from "knex";
import { exactCollation } from "./20261204000000_exact_identifiers.js";

// Scopes (ScopeService): names resources may require, with the roles a user needs for them.
export async function up(knex: Knex): Promise<void> {
  // Names compare exactly on MySQL/MariaDB too (see exact_identifiers), as tokens carry them.
  const collation = /mysql/i.test(String(knex.client.config.client)) ? await exactCollation(knex) : undefined;
  await knex.schema.createTable("scopes", (t) => {
    if (collation) {
      t.charset("utf8mb4");
      t.collate(collation);
    }
    t.string("name", 100).primary().comment("the scope as tokens carry it");
    t.text("display_name").notNullable().comment("bounded by scopes.max_display_name_chars");
    t.text("description").notNullable().comment("bounded by scopes.max_description_chars");
    t.text("roles").notNullable().comment("JSON list of roles of which a user needs one; empty: any user");
    t.bigInteger("created_at").notNullable().comment("epoch ms");
    t.bigInteger("updated_at").notNullable().comment("epoch ms");
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("scopes");
}
