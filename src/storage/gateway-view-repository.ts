import type { Knex } from "knex";
import type { ApiResource, KeyType, Subscription, SubscriptionState, TokenType } from "@keymanager/core";
import type { GatewayApi, GatewayKeyMapping, GatewayScope, GatewaySubscription, RevokedToken } from "../domain/change-events.js";
import { ScopeRepository } from "./scope-repository.js";
import { fromJson } from "./rows.js";

interface MappingRow {
  consumer_key: string;
  application_id: string;
  application_name: string;
  application_tier: string;
  key_type: string;
  client_name: string;
  app_owner: string;
  key_manager: string;
  token_type: string;
}

interface ApiRow {
  api_id: string;
  name: string;
  context: string;
  version: string;
  publisher: string;
  api_tier: string;
  resources: string | null;
}

interface TokenRow {
  id: string;
  consumer_key: string;
  token_type: string;
  expires_at: number | string;
}

/**
 * What a gateway needs to decide ValidateToken by itself, read lean (no secrets decrypted), one
 * entity or one page (keyset, by primary key) at a time: the change log's details and the Watch
 * snapshot read through it.
 */
export class GatewayViewRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async keyMapping(consumerKey: string): Promise<GatewayKeyMapping | undefined> {
    const row = (await this.mappings().where("k.consumer_key", consumerKey).first()) as MappingRow | undefined;
    return row && toMapping(row);
  }

  async keyMappings(after: string, limit: number): Promise<GatewayKeyMapping[]> {
    const rows = (await this.mappings().where("k.consumer_key", ">", after).orderBy("k.consumer_key").limit(limit)) as MappingRow[];
    return rows.map(toMapping);
  }

  async scope(name: string): Promise<GatewayScope | undefined> {
    const found = await new ScopeRepository(this.db).find(name);
    return found && { name: found.name, displayName: found.displayName, description: found.description, roles: found.roles };
  }

  /** A page of scopes after `after` (by name). */
  async scopes(after: string, limit: number): Promise<GatewayScope[]> {
    const page = await new ScopeRepository(this.db).list(after === "" ? { limit } : { limit, after: [after] });
    return page.items.map((s) => ({ name: s.name, displayName: s.displayName, description: s.description, roles: s.roles }));
  }

  async api(apiId: string): Promise<GatewayApi | undefined> {
    const row = (await this.apisQuery().where("a.api_id", apiId).first()) as ApiRow | undefined;
    return row && toApi(row);
  }

  async apis(after: string, limit: number): Promise<GatewayApi[]> {
    const rows = (await this.apisQuery().where("a.api_id", ">", after).orderBy("a.api_id").limit(limit)) as ApiRow[];
    return rows.map(toApi);
  }

  async resources(apiId: string): Promise<ApiResource[] | undefined> {
    const row = (await this.db("api_resources").select("resources").where({ api_id: apiId }).first()) as { resources: string } | undefined;
    return row && fromJson<ApiResource[]>(row.resources);
  }

  /** The subscription, with its API's context. */
  async subscription(applicationId: string, apiId: string): Promise<GatewaySubscription | undefined> {
    const row = await this.db("subscriptions as s")
      .leftJoin("apis as a", "a.api_id", "s.api_id")
      .select("s.id", "s.application_id", "s.api_id", "s.tier", "s.state", "a.context")
      .where({ "s.application_id": applicationId, "s.api_id": apiId })
      .first();
    return row && { ...toSubscription(row), ...(row.context !== null && { apiContext: row.context as string }) };
  }

  async subscriptions(after: string, limit: number): Promise<Subscription[]> {
    const rows = await this.db("subscriptions").select("id", "application_id", "api_id", "tier", "state").where("id", ">", after).orderBy("id").limit(limit);
    return rows.map(toSubscription);
  }

  /** The token with this hash, if it is revoked. */
  async revokedToken(tokenHash: string): Promise<RevokedToken | undefined> {
    const row = (await this.db("access_tokens")
      .select("id", "consumer_key", "token_type", "expires_at")
      .where({ token_hash: tokenHash })
      .whereNotNull("revoked_at")
      .first()) as TokenRow | undefined;
    return row && toRevoked(row);
  }

  /** The revoked tokens of a refresh token's family that have not expired at `now`. */
  async revokedInFamily(familyId: string, now: number): Promise<RevokedToken[]> {
    const rows = (await this.db("access_tokens")
      .select("id", "consumer_key", "token_type", "expires_at")
      .where({ family_id: familyId })
      .whereNotNull("revoked_at")
      .andWhere("expires_at", ">", now)
      .orderBy("id")) as TokenRow[];
    return rows.map(toRevoked);
  }

  /** The latest expiry (epoch ms) of the stored tokens of a consumer key or an end user; undefined: none. */
  async latestExpiry(of: { consumerKey?: string | undefined; endUser?: string | undefined }): Promise<number | undefined> {
    const q = this.db("access_tokens").max({ latest: "expires_at" });
    if (of.consumerKey !== undefined) q.where({ consumer_key: of.consumerKey });
    if (of.endUser !== undefined) q.where({ end_user: of.endUser });
    const row = (await q.first()) as { latest: number | string | null } | undefined;
    return row?.latest === null || row?.latest === undefined ? undefined : Number(row.latest);
  }

  /** Revoked tokens that have not expired at `now`, by id. */
  async revokedTokens(now: number, after: string, limit: number): Promise<RevokedToken[]> {
    const rows = (await this.db("access_tokens")
      .select("id", "consumer_key", "token_type", "expires_at")
      .whereNotNull("revoked_at")
      .andWhere("expires_at", ">", now)
      .andWhere("id", ">", after)
      .orderBy("id")
      .limit(limit)) as TokenRow[];
    return rows.map(toRevoked);
  }

  /** The public JWKs of the signing keys kept (retired ones until their tokens expire), the active one first. */
  async signingKeys(): Promise<Array<Record<string, unknown>>> {
    const rows = (await this.db("signing_keys").select("public_jwk", "retired_at", "created_at")) as Array<{
      public_jwk: string;
      retired_at: number | string | null;
      created_at: number | string;
    }>;
    const retired = (r: (typeof rows)[number]) => (r.retired_at === null ? Number.POSITIVE_INFINITY : Number(r.retired_at));
    return rows.sort((a, b) => retired(b) - retired(a) || Number(b.created_at) - Number(a.created_at)).map((r) => fromJson(r.public_jwk));
  }

  private mappings(): Knex.QueryBuilder {
    return this.db("application_keys as k")
      .join("oauth_clients as c", "c.consumer_key", "k.consumer_key")
      .select(
        "k.consumer_key",
        "k.application_id",
        "k.application_name",
        "k.application_tier",
        "k.key_type",
        "c.client_name",
        "c.app_owner",
        "c.key_manager",
        "c.token_type",
      );
  }

  private apisQuery(): Knex.QueryBuilder {
    return this.db("apis as a")
      .leftJoin("api_resources as r", "r.api_id", "a.api_id")
      .select("a.api_id", "a.name", "a.context", "a.version", "a.publisher", "a.api_tier", "r.resources");
  }
}

function toMapping(r: MappingRow): GatewayKeyMapping {
  return {
    consumerKey: r.consumer_key,
    applicationId: r.application_id,
    applicationName: r.application_name || r.client_name,
    applicationTier: r.application_tier,
    keyType: r.key_type as KeyType,
    subscriber: r.app_owner,
    keyManager: r.key_manager,
    tokenType: r.token_type as TokenType,
  };
}

function toApi(r: ApiRow): GatewayApi {
  return {
    apiId: r.api_id,
    name: r.name,
    context: r.context,
    version: r.version,
    publisher: r.publisher,
    apiTier: r.api_tier,
    resources: r.resources === null ? [] : fromJson<ApiResource[]>(r.resources),
  };
}

function toSubscription(r: { id: string; application_id: string; api_id: string; tier: string; state: string }): Subscription {
  return { id: r.id, applicationId: r.application_id, apiId: r.api_id, tier: r.tier, state: r.state as SubscriptionState };
}

function toRevoked(r: TokenRow): RevokedToken {
  return { jti: r.id, consumerKey: r.consumer_key, tokenType: r.token_type as TokenType, expiresAt: Number(r.expires_at) };
}
