import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { ExternalKeyManagerConfig } from "../config/external-key-managers.js";
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
  /** What the services call: the router over all of them. */
  keyManager: KeyManager;
  /**
   * Takes the external key managers of a reloaded configuration: one whose settings are unchanged
   * is kept as it is (with what it learnt: discovery, JWKS), the others are made anew.
   */
  reconfigure(config: Config): void;
  close(): void;
}

/** The resident key manager and the configured external ones (again on each reload: `reconfigure`). */
export function buildKeyManagers(deps: {
  resident: KeyManager;
  config: () => Config;
  store: Store;
  clock: Clock;
  events: ChangeEvents;
  logger: Logger;
}): KeyManagers {
  const cache = new ExternalTokenCache(deps.events);
  let configured = deps.config().externalKeyManagers;
  const make = (config: ExternalKeyManagerConfig) =>
    new OAuth2KeyManager({ config, serviceConfig: deps.config, store: deps.store, clock: deps.clock, events: deps.events, cache, logger: deps.logger });
  const registry = new KeyManagerRegistry(deps.resident, configured.map(make), deps.store, () => deps.config().issuer);
  return {
    registry,
    keyManager: new RoutingKeyManager(registry),
    reconfigure: (config) => {
      if (isDeepStrictEqual(config.externalKeyManagers, configured)) return;
      const held = new Map(configured.map((c, i) => [c.name, { config: c, km: registry.external[i] as OAuth2KeyManager }]));
      registry.replace(
        config.externalKeyManagers.map((c) => {
          const same = held.get(c.name);
          return same && isDeepStrictEqual(same.config, c) ? same.km : make(c);
        }),
      );
      configured = config.externalKeyManagers;
    },
    close: () => cache.close(),
  };
}
