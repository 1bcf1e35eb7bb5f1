import type { Knex } from "knex";
import * as createApplications from "./20261122000000_create_applications.js";
import * as createResources from "./20261122000100_create_api_resources.js";
import * as createTokens from "./20261122010000_create_tokens_and_subscriptions.js";
import * as systemClients from "./20261122020000_system_clients.js";
import * as tokenHousekeeping from "./20261122030000_token_housekeeping.js";
import * as cacheInvalidations from "./20261122040000_cache_invalidations.js";
import * as clientRegistrations from "./20261122050000_client_registrations.js";
import * as clusterReplicas from "./20261123000000_cluster_replicas.js";
import * as exactIdentifiers from "./20261204000000_exact_identifiers.js";
import * as changeLog from "./20261204120000_change_log.js";
import * as authorizationCode from "./20261205000000_authorization_code.js";
import * as userAttributes from "./20261205010000_user_attributes.js";
import * as consumerSecrets from "./20261205120000_consumer_secrets.js";
import * as tokenRevocations from "./20261205120000_token_revocations.js";
import * as trustedIssuers from "./20261205120000_trusted_issuers.js";
import * as exactIdentifiersNewTables from "./20261205230000_exact_identifiers_new_tables.js";
import * as scopes from "./20261206000000_scopes.js";

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

/** Every migration in order. Names are timestamps, so new ones sort after the old. */
const migrations: Record<string, Migration> = {
  "20261122000000_create_applications": createApplications,
  "20261122000100_create_api_resources": createResources,
  "20261122010000_create_tokens_and_subscriptions": createTokens,
  "20261122020000_system_clients": systemClients,
  "20261122030000_token_housekeeping": tokenHousekeeping,
  "20261122040000_cache_invalidations": cacheInvalidations,
  "20261122050000_client_registrations": clientRegistrations,
  "20261123000000_cluster_replicas": clusterReplicas,
  "20261204000000_exact_identifiers": exactIdentifiers,
  "20261204120000_change_log": changeLog,
  "20261205000000_authorization_code": authorizationCode,
  "20261205010000_user_attributes": userAttributes,
  "20261205120000_consumer_secrets": consumerSecrets,
  "20261205120000_token_revocations": tokenRevocations,
  "20261205120000_trusted_issuers": trustedIssuers,
  "20261205230000_exact_identifiers_new_tables": exactIdentifiersNewTables,
  "20261206000000_scopes": scopes,
};

/** Migrations compiled into the service, so they run the same from source or a bundle. */
export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: async () => Object.keys(migrations).sort(),
  getMigrationName: (name) => name,
  getMigration: async (name) => {
    const migration = migrations[name];
    if (!migration) throw new Error(`unknown migration ${name}`);
    return migration;
  },
};
