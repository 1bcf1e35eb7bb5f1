import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  AuthLevel as PbAuthLevel,
  type GatewayEntity,
  type GatewayEntityKey,
  type GatewayExternalKeyManager,
  type GatewayKeyMapping,
  KeyType as PbKeyType,
  type RevokedToken,
  SubscriptionState as PbSubscriptionState,
} from "@keymanager/client";
import { type Api, type ApiResource, type AuthLevel, type KeyMapping, ResourceTable, type Subscription, type SubscriptionState } from "@keymanager/core";
import { createLocalJWKSet, type JSONWebKeySet } from "jose";
import type { ExternalIssuer } from "./external-jwts.js";

const AUTH_LEVELS: Record<number, AuthLevel> = {
  [PbAuthLevel.APPLICATION]: "APPLICATION",
  [PbAuthLevel.APPLICATION_USER]: "APPLICATION_USER",
  [PbAuthLevel.ANY]: "ANY",
  [PbAuthLevel.NONE]: "NONE",
};
const STATES: Record<number, SubscriptionState> = {
  [PbSubscriptionState.UNBLOCKED]: "UNBLOCKED",
  [PbSubscriptionState.BLOCKED]: "BLOCKED",
  [PbSubscriptionState.PROD_ONLY_BLOCKED]: "PROD_ONLY_BLOCKED",
  [PbSubscriptionState.ON_HOLD]: "ON_HOLD",
  [PbSubscriptionState.REJECTED]: "REJECTED",
  [PbSubscriptionState.TIER_UPDATE_PENDING]: "TIER_UPDATE_PENDING",
};

interface HeldApi {
  api: Api;
  table: ResourceTable | undefined;
}

/** This key manager's JWT keys and issuer. */
export interface SigningKeys {
  issuer: string;
  keys: ReturnType<typeof createLocalJWKSet>;
  /** Its JWTs are not verified with the keys but asked of the server (enable_self_validation_jwt = false). */
  validateRemotely: boolean;
}

/**
 * One state of the copy: what a snapshot and the events after it left, as @keymanager/core's
 * model, indexed the way the decision rules ask.
 */
export class CopyState {
  private readonly apis = new Map<string, HeldApi>();
  private readonly apiIds = new Map<string, string>();
  readonly keyMappings = new Map<string, KeyMapping>();
  readonly subscriptions = new Map<string, Subscription>();
  signing: SigningKeys | undefined;
  /** Registered scopes by name, with the roles a user needs for each (ScopeService). */
  readonly scopes = new Map<string, { name: string; displayName: string; description: string; roles: string[] }>();
  /** External key managers by issuer (from the server's deployment file: a snapshot, then a reload's event). */
  readonly externals = new Map<string, ExternalIssuer>();
  /** The same by issuer, everything the server sent of each (its token pattern too), to compare lists. */
  private readonly externalsAsSent = new Map<string, string>();
  /** The version at which a reload changed the external key managers: answers kept before it are asked again. */
  externalsChangedAt: bigint | undefined;
  /** Revoked tokens by id (a JWT's jti), until they expire (epoch ms). */
  readonly revokedIds = new Map<string, number>();
  /** Every token of a consumer key, or of an end user, issued at or before (epoch ms). */
  readonly revokedByConsumer = new Map<string, number>();
  readonly revokedByUser = new Map<string, number>();
  /** When no token a revocation of `revokedByConsumer` or `revokedByUser` refuses is alive (epoch ms). */
  private readonly revocationExpiry = new Map<string, number>();
  /**
   * The last version at which a token of a consumer key (opaque or JWT) was revoked by itself:
   * answers the server gave on its tokens before it are asked again.
   */
  readonly keptRecheckAt = new Map<string, bigint>();

  api(context: string, version: string): Api | undefined {
    const id = this.apiIds.get(apiKey(context, version));
    return id === undefined ? undefined : this.apis.get(id)?.api;
  }

  resources(api: Api): ResourceTable | undefined {
    return this.apis.get(api.apiId)?.table;
  }

  subscription(applicationId: string, apiId: string): Subscription | undefined {
    return this.subscriptions.get(subscriptionKey(applicationId, apiId));
  }

  get size(): { apis: number; keyMappings: number; subscriptions: number; revokedIds: number } {
    return { apis: this.apis.size, keyMappings: this.keyMappings.size, subscriptions: this.subscriptions.size, revokedIds: this.revokedIds.size };
  }

  upsert(entity: GatewayEntity, version: bigint): void {
    const e = entity.entity;
    switch (e.case) {
      case "api": {
        const held = this.apis.get(e.value.apiId);
        if (held) this.apiIds.delete(apiKey(held.api.context, held.api.version));
        const api: Api = {
          apiId: e.value.apiId,
          name: e.value.name,
          context: e.value.context,
          version: e.value.version,
          publisher: e.value.publisher,
          apiTier: e.value.apiTier,
        };
        const resources: ApiResource[] = e.value.resources.map((r) => ({
          uriTemplate: r.uriTemplate,
          httpVerb: r.httpVerb as ApiResource["httpVerb"],
          authLevel: AUTH_LEVELS[r.authLevel] ?? "ANY",
          scopes: [...r.scopes],
          throttlingTier: r.throttlingTier,
        }));
        this.apis.set(api.apiId, { api, table: resources.length > 0 ? new ResourceTable(resources) : undefined });
        this.apiIds.set(apiKey(api.context, api.version), api.apiId);
        return;
      }
      case "keyMapping":
        this.keyMappings.set(e.value.consumerKey, keyMapping(e.value));
        return;
      case "subscription": {
        const s = e.value;
        this.subscriptions.set(subscriptionKey(s.applicationId, s.apiId), {
          id: s.subscriptionId,
          applicationId: s.applicationId,
          apiId: s.apiId,
          tier: s.tier,
          state: STATES[s.state] ?? "BLOCKED",
        });
        return;
      }
      case "signingKeys":
        this.signing = {
          issuer: e.value.issuer,
          keys: createLocalJWKSet({ keys: e.value.keys } as unknown as JSONWebKeySet),
          validateRemotely: e.value.validateRemotely,
        };
        return;
      case "revokedToken":
        this.revoke(e.value, version);
        return;
      case "tokenRevocation": {
        // The same from a snapshot as from an event: the latest time and the furthest expiry hold.
        const at = e.value.revokeTime ? timestampMs(e.value.revokeTime) : 0;
        const until = e.value.expireTime ? timestampMs(e.value.expireTime) : Number.MAX_SAFE_INTEGER;
        if (e.value.consumerKey) this.revokeAll(this.revokedByConsumer, `key\u0000${e.value.consumerKey}`, e.value.consumerKey, at, until);
        if (e.value.endUser) this.revokeAll(this.revokedByUser, `user\u0000${e.value.endUser}`, e.value.endUser, at, until);
        for (const t of e.value.revokedTokens) this.revoke(t, version);
        return;
      }
      case "externalKeyManager":
        this.addExternal(e.value);
        return;
      case "externalKeyManagers": {
        // Every one the server has now: one not listed is gone. The same as held (a server
        // restarted with the same file): answers kept stay.
        const held = new Map(this.externalsAsSent);
        this.externals.clear();
        this.externalsAsSent.clear();
        for (const km of e.value.keyManagers) this.addExternal(km);
        if (!sameExternals(held, this.externalsAsSent)) this.externalsChangedAt = version;
        return;
      }
      case "scope": {
        const { name, displayName, description, roles } = e.value;
        this.scopes.set(name, { name, displayName, description, roles: [...roles] });
        return;
      }
      case undefined:
        return;
    }
  }

  delete(key: GatewayEntityKey): void {
    const k = key.key;
    switch (k.case) {
      case "apiId": {
        const held = this.apis.get(k.value);
        if (held) this.apiIds.delete(apiKey(held.api.context, held.api.version));
        this.apis.delete(k.value);
        // Its subscriptions went with it, without events of their own: an API made again with
        // the same id starts with none.
        for (const [key, s] of this.subscriptions) if (s.apiId === k.value) this.subscriptions.delete(key);
        return;
      }
      case "consumerKey":
        this.keyMappings.delete(k.value);
        return;
      case "subscription":
        this.subscriptions.delete(subscriptionKey(k.value.applicationId, k.value.apiId));
        return;
      case "scopeName":
        this.scopes.delete(k.value);
        return;
      case undefined:
        return;
    }
  }

  /**
   * This state, a new snapshot's, replacing `held` (a stream reset): answers kept from before it
   * are asked again if the external key managers differ, as after their event.
   */
  replacing(held: CopyState | undefined, version: bigint): void {
    if (!held) return;
    this.externalsChangedAt = sameExternals(held.externalsAsSent, this.externalsAsSent) ? held.externalsChangedAt : version;
  }

  private addExternal(km: GatewayExternalKeyManager): void {
    const issuer = km.issuer.replace(/\/+$/, "");
    const { name, jwksUri, jwtValidation, tokenPattern, validationCacheSeconds } = km;
    this.externalsAsSent.set(issuer, JSON.stringify([name, jwksUri, jwtValidation, tokenPattern, validationCacheSeconds]));
    this.externals.set(issuer, { name, issuer, jwksUri, jwtValidation, validationCacheMs: validationCacheSeconds * 1000 });
  }

  /** Forgets revocations of tokens that have expired by `now` (they are refused as expired anyway). */
  forgetExpired(now: number): void {
    for (const [id, expires] of this.revokedIds) if (expires <= now) this.revokedIds.delete(id);
    for (const [id, expires] of this.revocationExpiry) {
      if (expires > now) continue;
      this.revocationExpiry.delete(id);
      const cut = id.indexOf("\u0000");
      (id.startsWith("key") ? this.revokedByConsumer : this.revokedByUser).delete(id.slice(cut + 1));
    }
  }

  private revokeAll(by: Map<string, number>, id: string, subject: string, at: number, until: number): void {
    by.set(subject, Math.max(at, by.get(subject) ?? 0));
    this.revocationExpiry.set(id, Math.max(until, this.revocationExpiry.get(id) ?? 0));
  }

  private revoke(t: RevokedToken, version: bigint): void {
    this.revokedIds.set(t.jti, t.expireTime ? timestampMs(t.expireTime) : Number.MAX_SAFE_INTEGER);
    // What the server said of a token is kept by the token, not its id (an opaque token's cannot be
    // told from it; a JWT's is not kept): what was kept of the consumer key's tokens before this
    // version, opaque tokens and JWTs the copy does not verify, is asked of the server again.
    if (t.consumerKey) this.keptRecheckAt.set(t.consumerKey, version);
  }
}

function keyMapping(m: GatewayKeyMapping): KeyMapping {
  return {
    consumerKey: m.consumerKey,
    applicationId: m.application?.applicationId ?? "",
    applicationName: m.application?.name ?? "",
    applicationTier: m.application?.tier ?? "",
    keyType: m.keyType === PbKeyType.SANDBOX ? "SANDBOX" : "PRODUCTION",
    subscriber: m.application?.owner ?? "",
    keyManager: m.keyManager,
  };
}

function apiKey(context: string, version: string): string {
  return `${context}\u0000${version}`;
}

function subscriptionKey(applicationId: string, apiId: string): string {
  return `${applicationId}\u0000${apiId}`;
}

/** Whether two lists of external key managers (externalsAsSent) are the same. */
function sameExternals(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [issuer, km] of a) if (b.get(issuer) !== km) return false;
  return true;
}
