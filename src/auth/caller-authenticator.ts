import { LRUCache } from "lru-cache";
import type { ChangeEvents } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import { PermissionDeniedError, UnauthenticatedError } from "../domain/errors.js";
import { isActive, type OAuthClient, type TokenRecord } from "../domain/model/index.js";
import { CacheStats } from "../observability/cache-stats.js";
import { hashToken } from "../oauth/token-hash.js";
import { isRestricted, type Principal, splitGroups } from "./principal.js";
import { SCOPES } from "./scopes.js";

/** How long an authenticated caller is trusted without another look (a safety net: other replicas' changes arrive through the cluster change feed). */
const CALLER_CACHE_TTL_MS = 30_000;
export const NO_CREDENTIALS = "this call needs an `authorization: Bearer <token>` of a system client";
const BEARER = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/;

export interface CallerLookup {
  /** The stored record of a token this service issued, active or not. */
  token(token: string): Promise<TokenRecord | undefined>;
  client(consumerKey: string): Promise<OAuthClient | undefined>;
}

interface Entry {
  principal: Principal;
  expiresAt: number;
}

/**
 * Turns an `authorization: Bearer` value into the calling system client. Answers from memory
 * (synchronously) once a token has been seen, so the gateway's hot path pays one hash and one
 * map lookup; revocations and client changes (this node's or another replica's) drop entries.
 */
export class CallerAuthenticator {
  /** Hits, misses and evictions of the callers' cache (the metrics read them). */
  readonly stats: CacheStats = new CacheStats("callers", (): number => this.callers.size);
  private readonly callers = new LRUCache<string, Entry>({ max: 10_000, ttl: CALLER_CACHE_TTL_MS, dispose: this.stats.disposed });
  /** Look-ups in flight: a gateway's many streams with one token, when its entry ends, share one. */
  private readonly resolving = new Map<string, Promise<Principal>>();
  /** Counts changes, so a look-up that overlapped one is not kept. */
  private changes = 0;

  constructor(
    private readonly lookup: CallerLookup,
    private readonly clock: Clock,
    events: ChangeEvents,
  ) {
    events.subscribe((change) => {
      this.changes++;
      this.resolving.clear();
      if (change.kind === "token") this.callers.delete(change.tokenHash);
      // Rare: a family, a user's or a client's tokens, or a client changed, or the cluster feed
      // may have missed changes. Start afresh.
      else if (change.kind === "tokens" || change.kind === "application" || change.kind === "all") this.callers.clear();
    });
  }

  /** The caller, or UNAUTHENTICATED. Synchronous when the token is already known. */
  authenticate(authorization: string | undefined): Principal | Promise<Principal> {
    const token = bearerToken(authorization);
    const hash = hashToken(token);
    const known = this.callers.get(hash);
    if (known && known.expiresAt > this.clock.nowMs()) {
      this.stats.hits++;
      return known.principal;
    }
    this.stats.misses++;
    const pending = this.resolving.get(hash);
    if (pending) return pending;
    const resolved = this.resolve(token, hash).finally(() => {
      if (this.resolving.get(hash) === resolved) this.resolving.delete(hash);
    });
    this.resolving.set(hash, resolved);
    return resolved;
  }

  private async resolve(token: string, hash: string): Promise<Principal> {
    const changes = this.changes;
    const record = await this.lookup.token(token);
    const client = record && isActive(record, this.clock.nowMs()) ? await this.lookup.client(record.consumerKey) : undefined;
    if (!record || !client?.system) throw new UnauthenticatedError("the bearer token is not valid for this service");
    const principal: Principal = {
      clientId: client.consumerKey,
      scopes: new Set(record.scopes),
      subscriber: record.endUser || client.appOwner,
      groups: splitGroups(client.groupId),
    };
    // A revocation that arrived meanwhile may concern this token: answer, but do not keep.
    if (changes === this.changes) this.callers.set(hash, { principal, expiresAt: record.expiresAt.getTime() });
    return principal;
  }
}

function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw new UnauthenticatedError(NO_CREDENTIALS);
  const match = BEARER.exec(authorization.trim());
  if (!match?.[1]) throw new UnauthenticatedError("the authorization must be `Bearer <token>`");
  return match[1];
}

/**
 * PERMISSION_DENIED unless the caller's token carries the scope. A store caller must act for a
 * named subscriber (admins excepted): a system client made before subscribers were required, or
 * a client certificate granted the store scope, has none and is refused store calls.
 */
export function requireScope(principal: Principal, scope: string, procedure: string): void {
  if (!principal.scopes.has(scope)) throw new PermissionDeniedError(`${procedure} needs a token with scope ${scope}`);
  if (scope === SCOPES.store && isRestricted(principal) && principal.subscriber === "") {
    throw new PermissionDeniedError(`${procedure}: this caller acts for no subscriber; a store caller's system client needs a subscriber`);
  }
}
