import type { KeyType } from "@keymanager/core";
import type { GatewayApi, GatewayKeyMapping, GatewayScope, GatewaySubscription, LoggedChange, RevokedToken } from "../domain/change-events.js";

/** An external key manager as a gateway needs it (from the deployment file). */
export interface GatewayExternalKeyManager {
  name: string;
  issuer: string;
  /** Empty when left to discovery. */
  jwksUri: string;
  jwtValidation: "jwks" | "introspection";
  /** Source of the anchored pattern; empty: none. */
  tokenPattern: string;
  /** How long the key manager keeps this server's word on one of its tokens; 0: not kept. */
  validationCacheSeconds: number;
}

/** Tokens revoked together at `at` (epoch ms): by consumer key, by end user, or listed. */
export interface TokenRevocation {
  at: number;
  consumerKey?: string;
  endUser?: string;
  revoked: RevokedToken[];
  /** Epoch ms: no token it refuses is alive after it. Undefined: not known (kept for good). */
  keepUntil?: number;
}

/** One thing a gateway keeps in its copy. */
export type SyncEntity =
  | { kind: "api"; api: GatewayApi }
  | { kind: "key-mapping"; mapping: GatewayKeyMapping }
  | { kind: "subscription"; subscription: GatewaySubscription }
  | { kind: "signing-keys"; keys: Array<Record<string, unknown>> }
  | { kind: "external-key-manager"; keyManager: GatewayExternalKeyManager }
  /** Every external key manager (events only): replaces those a gateway holds. */
  | { kind: "external-key-managers"; keyManagers: GatewayExternalKeyManager[] }
  | { kind: "revoked-token"; token: RevokedToken }
  | { kind: "token-revocation"; revocation: TokenRevocation }
  | { kind: "scope"; scope: GatewayScope };

/** Which entity a delete removes. */
export type SyncEntityKey =
  | { kind: "api"; apiId: string }
  | { kind: "key-mapping"; consumerKey: string }
  | { kind: "subscription"; applicationId: string; apiId: string }
  | { kind: "scope"; name: string };

/** One change of the log as a gateway applies it: an entity as it is now, or gone. */
export interface SyncEvent {
  version: number;
  /** Epoch ms of the commit. */
  at: number;
  upsert?: SyncEntity;
  delete?: SyncEntityKey;
}

/** What a watcher keeps: some APIs by context (and their subscriptions), one key type. */
export interface SyncFilter {
  /** Undefined: every API. */
  apiContexts?: ReadonlySet<string>;
  keyType?: KeyType;
}

/**
 * The event a log entry makes for gateways, or undefined when it makes none (a token revoked
 * that is not known here). Deletes carry no filterable fields: every watcher gets them.
 * `externalKeyManagers`: those of this replica's deployment file now (not stored in the log).
 */
export function eventOf(entry: LoggedChange, externalKeyManagers: () => GatewayExternalKeyManager[] = () => []): SyncEvent | undefined {
  const { version, at, detail } = entry;
  switch (detail.kind) {
    case "api":
    case "resources":
      return detail.api ? { version, at, upsert: { kind: "api", api: detail.api } } : { version, at, delete: { kind: "api", apiId: detail.apiId } };
    case "application":
      return detail.mapping
        ? { version, at, upsert: { kind: "key-mapping", mapping: detail.mapping } }
        : { version, at, delete: { kind: "key-mapping", consumerKey: detail.consumerKey } };
    case "subscription":
      return detail.subscription
        ? { version, at, upsert: { kind: "subscription", subscription: detail.subscription } }
        : { version, at, delete: { kind: "subscription", applicationId: detail.applicationId, apiId: detail.apiId } };
    case "token":
      return detail.revoked ? { version, at, upsert: { kind: "revoked-token", token: detail.revoked } } : undefined;
    case "tokens": {
      if (detail.consumerKey === undefined && detail.endUser === undefined && detail.revoked.length === 0) return undefined;
      const revocation: TokenRevocation = {
        at: detail.at,
        ...(detail.consumerKey !== undefined && { consumerKey: detail.consumerKey }),
        ...(detail.endUser !== undefined && { endUser: detail.endUser }),
        revoked: detail.revoked,
        ...(detail.keepUntil !== undefined && { keepUntil: detail.keepUntil }),
      };
      return { version, at, upsert: { kind: "token-revocation", revocation } };
    }
    case "signing-keys":
      return { version, at, upsert: { kind: "signing-keys", keys: detail.keys } };
    case "scope":
      return detail.scope ? { version, at, upsert: { kind: "scope", scope: detail.scope } } : { version, at, delete: { kind: "scope", name: detail.name } };
    case "external-key-managers":
      return { version, at, upsert: { kind: "external-key-managers", keyManagers: externalKeyManagers() } };
  }
}

/** Whether a watcher with `filter` keeps `entity`. */
export function keeps(filter: SyncFilter, entity: SyncEntity): boolean {
  switch (entity.kind) {
    case "api":
      return filter.apiContexts === undefined || filter.apiContexts.has(entity.api.context);
    case "subscription":
      return filter.apiContexts === undefined || (entity.subscription.apiContext !== undefined && filter.apiContexts.has(entity.subscription.apiContext));
    case "key-mapping":
      return filter.keyType === undefined || entity.mapping.keyType === filter.keyType;
    default:
      return true;
  }
}

/** Whether a watcher with `filter` is sent `event`. */
export function sends(filter: SyncFilter, event: SyncEvent): boolean {
  return event.upsert === undefined || keeps(filter, event.upsert);
}

/** The identity of an entity within a snapshot (a later state of it replaces an earlier one). */
export function identityOf(entity: SyncEntity): string | undefined {
  switch (entity.kind) {
    case "api":
      return `api\u0000${entity.api.apiId}`;
    case "key-mapping":
      return `key\u0000${entity.mapping.consumerKey}`;
    case "subscription":
      return `sub\u0000${entity.subscription.applicationId}\u0000${entity.subscription.apiId}`;
    case "signing-keys":
      return "jwks";
    case "scope":
      return `scope\u0000${entity.scope.name}`;
    case "revoked-token":
      return `jti\u0000${entity.token.jti}`;
    case "token-revocation": {
      // Whole revocations by consumer key or end user: one per subject (the latest covers the rest).
      const { consumerKey, endUser, revoked } = entity.revocation;
      if (revoked.length > 0 || (consumerKey === undefined) === (endUser === undefined)) return undefined;
      return consumerKey !== undefined ? `revoked-key\u0000${consumerKey}` : `revoked-user\u0000${endUser}`;
    }
    default:
      return undefined;
  }
}

export function identityOfKey(key: SyncEntityKey): string {
  switch (key.kind) {
    case "api":
      return `api\u0000${key.apiId}`;
    case "key-mapping":
      return `key\u0000${key.consumerKey}`;
    case "subscription":
      return `sub\u0000${key.applicationId}\u0000${key.apiId}`;
    case "scope":
      return `scope\u0000${key.name}`;
  }
}
