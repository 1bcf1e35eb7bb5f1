// km bootstrap: the first admin system client, written straight into the configured database
// (there is no caller yet to ask the server with). Its secret is printed once.
import { existsSync } from "node:fs";
import { SCOPES, SYSTEM_SCOPES } from "../../auth/scopes.js";
import { type SystemClient, SystemClients } from "../../auth/system-clients.js";
import { loadConfig } from "../../config/load.js";
import { systemClock } from "../../domain/clock.js";
import type { Page } from "../../domain/paging.js";
import { createKnex, prepareSchema } from "../../storage/database.js";
import { loadOrCreateEncryptionKey, SecretBox } from "../../storage/secret-box.js";
import { Store } from "../../storage/store.js";
import { type Command, list, optional } from "../command.js";

const DEFAULT_CONFIG = "config/keymanager.toml";

export const bootstrap: Command = {
  summary: "create the first admin system client in the database (no server needed); prints client_id and client_secret once, as JSON",
  details: `Scopes ${SYSTEM_SCOPES.join(", ")} unless --scope is given. Refuses (exit code 1) when an admin client
exists already, unless --another is given. A client with apim:subscribe but not km:admin acts
for a subscriber: --subscriber is then required. The database is the one of --config, KM_CONFIG_FILE or
${DEFAULT_CONFIG} (KM_* variables apply over it, as on the server).`,
  offline: true,
  alwaysJson: true,
  options: {
    config: { type: "string", value: "FILE", help: `the deployment file (KM_CONFIG_FILE, else ${DEFAULT_CONFIG} when it exists)` },
    name: { type: "string", value: "NAME", help: 'what the client is (default "bootstrap admin")' },
    scope: { type: "string", multiple: true, value: "SCOPE", help: "a scope (repeat); all of km:admin, apim:subscribe, km:gateway by default" },
    subscriber: { type: "string", value: "NAME", help: "the subscriber it acts for in the store (required without km:admin)" },
    another: { type: "boolean", help: "create one even though an admin client exists" },
  },
  async run(input, context) {
    const file = optional(input.values, "config") ?? context.env.KM_CONFIG_FILE ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
    const config = loadConfig({ file, env: context.env });
    const db = createKnex(config.database);
    try {
      await prepareSchema(db, config.database);
      const { key } = loadOrCreateEncryptionKey(config.encryptionKey, config.dataDir);
      const store = new Store(db, new SecretBox(key));
      const clients = new SystemClients(store, systemClock, () => config.name);
      const existing = (await everySystemClient(clients)).filter((c) => c.scopes.includes(SCOPES.admin));
      if (existing.length > 0 && input.values.another !== true) {
        console.error(`an admin system client exists already (${existing.map((c) => c.clientId).join(", ")}); pass --another to create one more`);
        return 1;
      }
      const scopes = list(input.values, "scope") ?? [...SYSTEM_SCOPES];
      const { client, clientSecret } = await clients.create({
        name: optional(input.values, "name") ?? "bootstrap admin",
        scopes,
        subscriber: optional(input.values, "subscriber") ?? "",
        groupIds: [],
      });
      console.error(`get a token: curl -s -u '${client.clientId}:<client_secret>' -d grant_type=client_credentials ${config.endpoints.token}`);
      // The only time the secret is shown: stdout, for the operator to keep.
      return { client_id: client.clientId, client_secret: clientSecret, scopes: client.scopes, token_endpoint: config.endpoints.token };
    } finally {
      await db.destroy();
    }
  },
};

/** Every system client, read a page at a time. */
async function everySystemClient(clients: SystemClients): Promise<SystemClient[]> {
  const all: SystemClient[] = [];
  let page: Page<SystemClient> = { items: [], next: undefined };
  do {
    page = await clients.list({ limit: 1000, after: page.next });
    all.push(...page.items);
  } while (page.next);
  return all;
}
