// npm run km -- bootstrap [--config FILE] [--name NAME] [--scope SCOPE ...] [--subscriber S] [--another]
// Creates a system client in the configured database and prints its credentials once.
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { SCOPES, SYSTEM_SCOPES } from "./auth/scopes.js";
import { type SystemClient, SystemClients } from "./auth/system-clients.js";
import { ConfigError, loadConfig } from "./config/load.js";
import { ChangeEvents } from "./domain/change-events.js";
import { DomainError } from "./domain/errors.js";
import { systemClock } from "./domain/clock.js";
import type { Page } from "./domain/paging.js";
import { createKnex, migrate } from "./storage/database.js";
import { loadOrCreateEncryptionKey, SecretBox } from "./storage/secret-box.js";
import { Store } from "./storage/store.js";

const DEFAULT_CONFIG = "config/keymanager.toml";
const USAGE = `usage: npm run km -- bootstrap [--config FILE] [--name NAME] [--scope SCOPE]... [--subscriber NAME] [--another]

bootstrap  creates the first admin system client (scopes ${SYSTEM_SCOPES.join(", ")} unless --scope
           is given) and prints its client_id and client_secret once. Refuses when an admin
           client exists already, unless --another is given. A client with ${SCOPES.store} but
           not ${SCOPES.admin} acts for a subscriber: --subscriber is then required.`;

async function bootstrap(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: "string" },
      name: { type: "string", default: "bootstrap admin" },
      scope: { type: "string", multiple: true },
      // No default: a store client without a subscriber is refused (it would act for nobody in particular).
      subscriber: { type: "string" },
      another: { type: "boolean", default: false },
    },
  });
  // The same file `npm start` reads, unless told otherwise.
  const file = values.config ?? process.env.KM_CONFIG_FILE ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  const config = loadConfig({ file, env: process.env });
  const db = createKnex(config.database);
  try {
    await migrate(db);
    const { key } = loadOrCreateEncryptionKey(config.encryptionKey, config.dataDir);
    const store = new Store(db, new SecretBox(key));
    const clients = new SystemClients(store, systemClock, new ChangeEvents(), () => config.name);
    const existing = (await everySystemClient(clients)).filter((c) => c.scopes.includes(SCOPES.admin));
    if (existing.length > 0 && !values.another) {
      console.error(`an admin system client exists already (${existing.map((c) => c.clientId).join(", ")}); pass --another to create one more`);
      return 1;
    }
    const scopes = values.scope ?? [...SYSTEM_SCOPES];
    const { client, clientSecret } = await clients.create({ name: values.name, scopes, subscriber: values.subscriber ?? "", groupIds: [] });
    // The only time the secret is shown: stdout, for the operator to keep.
    console.log(
      JSON.stringify({ client_id: client.clientId, client_secret: clientSecret, scopes: client.scopes, token_endpoint: config.endpoints.token }, null, 2),
    );
    console.error(`get a token: curl -s -u '${client.clientId}:<client_secret>' -d grant_type=client_credentials ${config.endpoints.token}`);
    return 0;
  } finally {
    await db.destroy();
  }
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === "bootstrap") return await bootstrap(rest);
    console.error(USAGE);
    return command === undefined || command === "help" || command === "--help" ? 0 : 2;
  } catch (err) {
    if (err instanceof ConfigError || err instanceof DomainError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
