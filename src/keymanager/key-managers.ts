import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { ChangeEvents } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import type { Store } from "../storage/store.js";
import type { KeyManager } from "./key-manager.js";
import { KeyManagerRegistry } from "./key-manager-registry.js";
import { OAuth2KeyManager } from "./oauth2/oauth2-key-manager.js";
import { ExternalTokenCache } from "./oauth2/token-cache.js";
import { RoutingKeyManager } from "./routing-key-manager.js";

export interface KeyManagers {
  registry: KeyManagerRegistry;
  /** What the services call: the resident key manager alone, or the router over all of them. */
  keyManager: KeyManager;
  close(): void;
}

/** The resident key manager and the configured external ones, read once at start. */
export function buildKeyManagers(deps: {
  resident: KeyManager;
  config: () => Config;
  store: Store;
  clock: Clock;
  events: ChangeEvents;
  logger: Logger;
}): KeyManagers {
  const cache = new ExternalTokenCache(deps.events);
  const external = deps
    .config()
    .externalKeyManagers.map(
      (config) =>
        new OAuth2KeyManager({ config, serviceConfig: deps.config, store: deps.store, clock: deps.clock, events: deps.events, cache, logger: deps.logger }),
    );
  const registry = new KeyManagerRegistry(deps.resident, external, deps.store, () => deps.config().issuer);
  return {
    registry,
    keyManager: external.length > 0 ? new RoutingKeyManager(registry) : deps.resident,
    close: () => cache.close(),
  };
}
