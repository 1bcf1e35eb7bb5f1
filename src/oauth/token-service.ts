import { createHash, randomUUID } from "node:crypto";
import { LRUCache } from "lru-cache";
import { setTimeout as sleep } from "node:timers/promises";
import { AuthenticationThrottle, type ThrottleLimits } from "./authentication-throttle.js";
import type { Config } from "../config/config.js";
import type { ChangeEvents } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import { DomainError, InvalidArgumentError, NotFoundError, PermissionDeniedError, UnauthenticatedError, UnimplementedError } from "../domain/errors.js";
import { type AcceptedSecret, acceptsSecret } from "../keymanager/credentials.js";
import { isKnownGrantType } from "../keymanager/grant-types.js";
import { type AccessTokenRequest, type AuthorizationCode, isActive, type OAuthClient, type TokenRecord } from "../domain/model/index.js";
import { checkScopes } from "../keymanager/validation.js";
import { Validator } from "../domain/validator.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import type { TokenWriter } from "../storage/token-writer.js";
import { SCOPES } from "../auth/scopes.js";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./passwords.js";
import { grantScopes } from "./scopes.js";
import { requireTokenGeneration } from "../keymanager/features.js";
import { withConfiguredClaims } from "./jwt-claims.js";
import type { SigningKeys } from "./signing-keys.js";
import { hashToken, newOpaqueToken } from "./token-hash.js";
import { verifierMatches } from "./pkce.js";
import { claimsFor } from "./user-claims.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { CacheStats } from "../observability/cache-stats.js";
import type { Metrics } from "../observability/metrics.js";
import type { GrantOutcome } from "./grants/grant-outcome.js";
import { JWT_BEARER, jwtBearerGrant } from "./grants/jwt-bearer.js";
import { TOKEN_EXCHANGE, tokenExchangeGrant } from "./grants/token-exchange.js";
import type { IssuerJwts } from "./issuer-jwts.js";
import { userScopes } from "./user-scopes.js";

export interface IssuedToken {
  accessToken: string;
  refreshToken: string | undefined;
  /** OpenID Connect: the code of a request with the openid scope gives one. */
  idToken?: string;
  record: TokenRecord;
  /** Token exchange (RFC 8693): the issued_token_type of the answer. */
  issuedTokenType?: string;
}

export const CLIENT_CACHE_TTL_MS = 30_000;

/** A client as authentication needs it: with the consumer secrets added to it (CreateConsumerSecret). */
interface KnownClient {
  client: OAuthClient;
  added: AcceptedSecret[];
}

/** The grants this key manager runs (a client may use those of its grant types). */
export const SUPPORTED_GRANTS: readonly string[] = ["client_credentials", "password", "refresh_token", "authorization_code", JWT_BEARER, TOKEN_EXCHANGE];

/**
 * The OAuth2 server: authenticates clients, runs the grants, issues opaque or JWT tokens
 * (stored only as hashes), introspects and revokes them.
 */
export class TokenService {
  /**
   * Clients recently authenticated, so a burst of token requests does not read and decrypt the
   * same row each time. Changes on this node drop an entry at once, another replica's change (a
   * regenerated secret) when the cluster change feed brings it, at the latest after CLIENT_CACHE_TTL_MS.
   */
  private readonly clients = new LRUCache<string, KnownClient>({ max: 10_000, ttl: CLIENT_CACHE_TTL_MS, dispose: (...a) => this.clientStats.disposed(...a) });
  /** Hits, misses and evictions of the clients' cache (the metrics read them). */
  readonly clientStats: CacheStats = new CacheStats("oauth_clients", () => this.clients.size);
  readonly throttle: AuthenticationThrottle;

  constructor(
    private readonly store: Store,
    private readonly keys: SigningKeys,
    private readonly config: () => Config,
    private readonly clock: Clock,
    events: ChangeEvents,
    private readonly writer: TokenWriter,
    throttleLimits?: ThrottleLimits,
    private readonly metrics?: Metrics,
    /** Trusted issuers' JWTs: the JWT bearer and token exchange grants (refused without). */
    private readonly issuerJwts?: IssuerJwts,
  ) {
    this.throttle = new AuthenticationThrottle(clock, throttleLimits, metrics && ((scope) => metrics.lockout(scope)));
    events.subscribe((change) => {
      if (change.kind === "application") this.clients.delete(change.consumerKey);
      else if (change.kind === "all") this.clients.clear();
    });
  }

  /**
   * The client whose id and secret these are; every failure looks the same to the caller.
   * `source` is the caller's network address: wrong secrets pause that source, never the client
   * (oauth/authentication-throttle.ts).
   */
  async authenticateClient(clientId: string, clientSecret: string, source: string): Promise<OAuthClient> {
    const attempt = { source, subject: clientId };
    this.throttle.check(attempt);
    const cached = clientId ? this.clients.get(clientId) : undefined;
    if (clientId) cached ? this.clientStats.hits++ : this.clientStats.misses++;
    const known = clientId ? (cached ?? (await this.readClient(clientId))) : undefined;
    const client = known?.client;
    // The client's secret or any added one that has not expired (revoked ones are gone).
    const ok = acceptsSecret(clientSecret, client?.consumerSecret ?? "\u0000no-client", known?.added ?? [], this.clock.now());
    if (!known || !client || !ok || clientSecret === "" || this.heldElsewhere(client)) {
      const delayMs = this.throttle.failed(attempt);
      if (delayMs > 0) await sleep(delayMs);
      throw new UnauthenticatedError("client authentication failed", { oauth: "invalid_client" });
    }
    this.throttle.succeeded(attempt);
    this.clients.set(clientId, known);
    return client;
  }

  /** A client with its added secrets; system clients (this service's callers) have none. */
  private async readClient(clientId: string): Promise<KnownClient | undefined> {
    const client = await this.store.clients.find(clientId);
    if (!client) return undefined;
    return { client, added: client.system ? [] : await this.store.consumerSecrets.ofClient(clientId) };
  }

  /**
   * The public client (token endpoint auth method "none") a request without a secret names; it
   * proves nothing, so it may only use the grants that need no secret (authorization_code with
   * PKCE, refresh_token: validation.ts refuses others at registration).
   */
  private async publicClient(request: AccessTokenRequest): Promise<OAuthClient | undefined> {
    if (request.clientId === "" || request.clientSecret !== "") return undefined;
    const client = await this.store.clients.find(request.clientId);
    return client?.publicClient ? client : undefined;
  }

  private confidentialClient(request: AccessTokenRequest, source: string): Promise<OAuthClient> {
    checkCredentialsGiven(request);
    return this.authenticateClient(request.clientId, request.clientSecret, source);
  }

  /**
   * Another check of a presented secret (MapOAuthApplication) under the same throttle as client
   * authentication, sharing its counts: refused at once while `source` is paused for `subject`
   * (or for all); a refusal `isFailure` recognises counts as a failed authentication and comes as
   * late as a wrong secret at the token endpoint would; success starts the pair afresh.
   */
  async throttled<T>(source: string, subject: string, run: () => Promise<T>, isFailure: (err: unknown) => boolean): Promise<T> {
    const attempt = { source, subject };
    this.throttle.check(attempt);
    try {
      const result = await run();
      this.throttle.succeeded(attempt);
      return result;
    } catch (err) {
      if (isFailure(err)) {
        const delayMs = this.throttle.failed(attempt);
        if (delayMs > 0) await sleep(delayMs);
      }
      throw err;
    }
  }

  /** A client of an external key manager: its tokens come from that server, never from this one. */
  private heldElsewhere(client: OAuthClient): boolean {
    return this.config().externalKeyManagers.some((km) => km.name === client.keyManager);
  }

  /**
   * GetNewApplicationAccessToken and POST /oauth2/token. The client is authenticated before the
   * rest of the request is looked at, so an unauthenticated caller cannot make the service
   * validate (and describe) a large request.
   */
  async issue(request: AccessTokenRequest, source: string): Promise<IssuedToken> {
    if (!this.metrics) return this.issueToken(request, source);
    try {
      const issued = await this.issueToken(request, source);
      this.metrics.grant(request.grantType, "issued");
      return issued;
    } catch (err) {
      this.metrics.grant(request.grantType, grantOutcome(err));
      throw err;
    }
  }

  private async issueToken(request: AccessTokenRequest, source: string): Promise<IssuedToken> {
    const client = (await this.publicClient(request)) ?? (await this.confidentialClient(request, source));
    checkRequest(request);
    // Applications' tokens follow the key manager's switches; this service's own callers always get theirs.
    if (!client.system) requireTokenGeneration(this.config().name, this.config().features, request.grantType);
    const outcome = await this.withUserRoles(client, await this.runGrant(client, request));
    const issued = await this.mint(client, request, outcome);
    // Only once the new token is issued (a refused request revokes nothing), and only a token of
    // the same client: nobody revokes another client's tokens this way.
    if (request.tokenToRevoke) await this.revoke(request.tokenToRevoke, { consumerKey: client.consumerKey });
    return issued;
  }

  /**
   * A user's token (every grant with an end user: password, authorization code, refresh, JWT
   * bearer, token exchange) keeps the role-bound scopes the user holds a role of (scopesForUser).
   * A subject that is no user here (an outside issuer's) holds no roles. System clients' own
   * scopes are not registered scopes.
   */
  private async withUserRoles(client: OAuthClient, outcome: GrantOutcome): Promise<GrantOutcome> {
    if (outcome.endUser === "" || client.system) return outcome;
    return { ...outcome, scopes: await userScopes(this.store, outcome.endUser, outcome.scopes) };
  }

  private async runGrant(client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
    const grant = request.grantType;
    if (!SUPPORTED_GRANTS.includes(grant)) {
      if (isKnownGrantType(grant)) {
        throw new UnimplementedError(`the ${grant} grant is not supported by this key manager`, { oauth: "unsupported_grant_type" });
      }
      throw new InvalidArgumentError([{ field: "grant_type", description: "unknown grant type" }], { oauth: "unsupported_grant_type" });
    }
    if (!client.grantTypes.includes(grant)) {
      throw new PermissionDeniedError(`the client may not use the ${grant} grant`, { oauth: "unauthorized_client" });
    }
    if (grant === "client_credentials") {
      return { endUser: "", scopes: scopesFor(client, request.scopes), familyId: randomUUID(), withRefresh: false };
    }
    if (grant === "password") return this.passwordGrant(client, request);
    if (grant === "authorization_code") return this.authorizationCodeGrant(client, request);
    if (grant === JWT_BEARER || grant === TOKEN_EXCHANGE) {
      if (!this.issuerJwts) throw new UnimplementedError(`the ${grant} grant is not supported by this key manager`, { oauth: "unsupported_grant_type" });
      const deps = { store: this.store, issuerJwts: this.issuerJwts, clock: this.clock, config: this.config, ownToken: (t: string) => this.lookup(t) };
      return grant === JWT_BEARER ? jwtBearerGrant(deps, client, request) : tokenExchangeGrant(deps, client, request);
    }
    return this.refreshGrant(client, request);
  }

  /**
   * RFC 6749 section 4.1.3 with PKCE (RFC 7636 section 4.6): the code is the client's, unspent,
   * unexpired, asked for with the same redirect_uri, and the verifier is the challenge's. A code
   * presented again revokes every token the first exchange gave (RFC 6749 section 4.1.2).
   */
  private async authorizationCodeGrant(client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
    const value = request.requestParameters.code ?? "";
    const verifier = request.requestParameters.code_verifier ?? "";
    if (value === "") throw new InvalidArgumentError([{ field: "code", description: "is required" }], { oauth: "invalid_request" });
    const code = await this.store.authorizationCodes.findByHash(hashToken(value));
    if (!code || code.consumerKey !== client.consumerKey) throw invalidCode("invalid authorization code");
    if (code.usedAt) {
      await this.revokeFamily({ familyId: code.familyId, endUser: code.username }, this.clock.now());
      throw invalidCode("the authorization code was already used; the tokens it gave are revoked");
    }
    if (code.expiresAt <= this.clock.now()) throw invalidCode("the authorization code has expired");
    if (code.redirectUri !== "" && request.callbackUri !== code.redirectUri) {
      throw invalidCode("redirect_uri does not match the authorization request's");
    }
    if (code.codeChallenge !== "") {
      if (verifier === "") throw new InvalidArgumentError([{ field: "code_verifier", description: "is required (PKCE)" }], { oauth: "invalid_grant" });
      if (!verifierMatches(verifier, code.codeChallenge)) throw invalidCode("code_verifier does not match the code_challenge");
    } else if (verifier !== "") {
      throw invalidCode("the authorization request sent no code_challenge");
    }
    return {
      endUser: code.username,
      scopes: code.scopes,
      familyId: code.familyId,
      withRefresh: client.grantTypes.includes("refresh_token"),
      code,
    };
  }

  /**
   * Spends the code and stores its token in one transaction, taking turns with the user's other
   * family changes (lockFamilies): of two exchanges of one code, the second finds it spent and
   * revokes what the first stored.
   */
  private async storeCodeToken(code: AuthorizationCode, record: TokenRecord): Promise<void> {
    const now = this.clock.now();
    const stored = await this.store.transaction(async (s) => {
      await lockFamilies(s, record.endUser);
      if (!(await s.authorizationCodes.spend(code.codeHash, now))) {
        await s.tokens.revokeFamily(code.familyId, now);
        s.changed({ kind: "tokens", familyId: code.familyId });
        return false;
      }
      await s.tokens.insert(record);
      return true;
    });
    if (!stored) throw invalidCode("the authorization code was already used; the tokens it gave are revoked");
  }

  private async passwordGrant(client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
    const user = request.resourceOwnerUsername ? await this.store.users.find(request.resourceOwnerUsername) : undefined;
    const valid = await verifyPassword(request.resourceOwnerPassword, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (!user || !valid) throw invalidUserCredentials();
    return {
      endUser: user.username,
      scopes: scopesFor(client, request.scopes),
      familyId: randomUUID(),
      withRefresh: client.grantTypes.includes("refresh_token"),
      passwordHash: user.passwordHash,
    };
  }

  /**
   * Rotation: a refresh token is spent once; presenting it again revokes its whole family. This
   * checks the request; the token is spent when the new one is stored (rotate), so a refused
   * request (invalid_scope) leaves it unspent.
   */
  private async refreshGrant(client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
    const previous = request.refreshToken ? await this.store.tokens.findByRefreshHash(hashToken(request.refreshToken)) : undefined;
    const now = this.clock.now();
    if (!previous || previous.consumerKey !== client.consumerKey) throw invalidRefreshToken();
    if (previous.refreshUsedAt) {
      await this.revokeFamily(previous, now);
      throw invalidRefreshToken();
    }
    if (previous.revokedAt || !previous.refreshExpiresAt || previous.refreshExpiresAt <= now) throw invalidRefreshToken();
    const scopes = request.scopes.length > 0 ? request.scopes.filter((s) => previous.scopes.includes(s)) : previous.scopes;
    if (scopes.length === 0) throw new InvalidArgumentError([{ field: "scopes", description: "exceed the original grant" }], { oauth: "invalid_scope" });
    return { endUser: previous.endUser, scopes, familyId: previous.familyId, withRefresh: true, replaces: previous };
  }

  /**
   * Stores the token of a refresh_token grant in one transaction: spends the refresh token,
   * retires the access token it came with, inserts the new one. It takes turns with every other
   * change of the family (lockFamilies), so of concurrent requests with one refresh token the
   * first rotates and each other finds the token spent, which is reuse, and revokes the family,
   * the first's new token included.
   */
  private async rotate(previous: TokenRecord, next: TokenRecord): Promise<void> {
    const now = this.clock.now();
    const result = await this.store.transaction(async (s) => {
      await lockFamilies(s, previous.endUser);
      const current = await s.tokens.findById(previous.id, LOCK);
      if (!current) return "invalid";
      // Spent is asked first: the rotation that spent it revoked its access token too.
      if (current.refreshUsedAt) {
        await s.tokens.revokeFamily(current.familyId, now);
        s.changed({ kind: "tokens", familyId: current.familyId });
        return "reused";
      }
      if (current.revokedAt) return "invalid";
      await s.tokens.spendRefresh(current.id, now);
      await s.tokens.revoke(current.id, now);
      await s.tokens.insert(next);
      s.changed({ kind: "token", tokenHash: current.tokenHash });
      return "rotated";
    });
    if (result !== "rotated") throw invalidRefreshToken();
  }

  /**
   * Stores a password grant's token if the password it was checked against is still the user's,
   * taking turns with password changes (lockFamilies): a change that lands first refuses the
   * grant; one that lands after revokes the token with the user's others.
   */
  private async storeUserToken(checkedHash: string, record: TokenRecord): Promise<void> {
    const stored = await this.store.transaction(async (s) => {
      const user = await s.users.find(record.endUser, LOCK);
      if (user?.passwordHash !== checkedHash) return false;
      await s.tokens.insert(record);
      return true;
    });
    if (!stored) throw invalidUserCredentials();
  }

  /** Revokes every token of a family, the one a rotation in progress adds included (lockFamilies). */
  private async revokeFamily(family: { familyId: string; endUser: string }, now: Date): Promise<void> {
    await this.store.transaction(async (s) => {
      await lockFamilies(s, family.endUser);
      await s.tokens.revokeFamily(family.familyId, now);
      s.changed({ kind: "tokens", familyId: family.familyId });
    });
  }

  private async mint(client: OAuthClient, request: AccessTokenRequest, outcome: GrantOutcome): Promise<IssuedToken> {
    const config = this.config();
    // A JWT carries its times in whole seconds (iat, exp): its record holds the same instants, so a
    // gateway verifying it in process (@keymanager/gateway) reports the times ValidateToken does.
    const now = this.clock.now();
    const tokenType = outcome.tokenType ?? client.tokenType;
    const issuedAt = tokenType === "JWT" ? new Date(Math.floor(now.getTime() / 1000) * 1000) : now;
    const base = outcome.endUser === "" ? client.validity.applicationTokenSeconds : client.validity.userTokenSeconds;
    // A system client's token opens this service's own calls: short-lived whatever was asked.
    const longest = client.system ? Math.min(config.validity.systemTokenSeconds, config.validity.maxTokenSeconds) : config.validity.maxTokenSeconds;
    const grantLongest = outcome.maxSeconds && outcome.maxSeconds > 0 ? outcome.maxSeconds : longest;
    const seconds = Math.min(request.validityPeriodSeconds > 0 ? request.validityPeriodSeconds : base, longest, grantLongest);
    const expiresAt = new Date(issuedAt.getTime() + seconds * 1000);
    const id = randomUUID();
    const accessToken =
      tokenType === "JWT"
        ? await this.keys.sign(
            withConfiguredClaims(
              {
                ...outcome.claims,
                iss: config.issuer,
                sub: outcome.endUser || client.consumerKey,
                aud: client.consumerKey,
                client_id: client.consumerKey,
                scope: outcome.scopes.join(" "),
                jti: id,
              },
              config.features,
            ),
            expiresAt,
            issuedAt,
          )
        : newOpaqueToken();
    const refreshToken = outcome.withRefresh ? newOpaqueToken() : undefined;
    const refreshSeconds = Math.min(client.validity.refreshTokenSeconds, config.validity.maxTokenSeconds);
    const record: TokenRecord = {
      id,
      tokenHash: hashToken(accessToken),
      consumerKey: client.consumerKey,
      endUser: outcome.endUser,
      scopes: outcome.scopes,
      tokenType,
      grantType: request.grantType,
      issuedAt,
      expiresAt,
      revokedAt: undefined,
      refreshHash: refreshToken ? hashToken(refreshToken) : undefined,
      refreshExpiresAt: refreshToken ? new Date(issuedAt.getTime() + refreshSeconds * 1000) : undefined,
      refreshUsedAt: undefined,
      familyId: outcome.familyId,
    };
    if (outcome.replaces) await this.rotate(outcome.replaces, record);
    else if (outcome.code) {
      await this.storeCodeToken(outcome.code, record);
      if (outcome.scopes.includes("openid"))
        return { accessToken, refreshToken, idToken: await this.idToken(client, outcome.code, accessToken, record), record };
    } else if (outcome.passwordHash !== undefined) await this.storeUserToken(outcome.passwordHash, record);
    else await this.writer.insert(record);
    return { accessToken, refreshToken, record, ...(outcome.issuedTokenType ? { issuedTokenType: outcome.issuedTokenType } : {}) };
  }

  /**
   * The OpenID Connect id_token of a code's exchange (Core 3.1.3.6), signed with the signing keys:
   * the user's claims its scopes give, the request's nonce, at_hash of the access token. It has no
   * client_id claim and is stored nowhere, so no gateway takes it for an access token.
   */
  private async idToken(client: OAuthClient, code: AuthorizationCode, accessToken: string, record: TokenRecord): Promise<string> {
    const user = await this.store.users.get(code.username);
    const digest = createHash("sha256").update(accessToken, "ascii").digest();
    const claims = {
      ...claimsFor(user, code.scopes),
      iss: this.config().issuer,
      aud: client.consumerKey,
      azp: client.consumerKey,
      auth_time: Math.floor(code.authTime.getTime() / 1000),
      at_hash: digest.subarray(0, digest.length / 2).toString("base64url"),
      ...(code.nonce !== "" ? { nonce: code.nonce } : {}),
    };
    return this.keys.sign(claims, record.expiresAt, record.issuedAt, "JWT");
  }

  /**
   * RFC 7662 introspection by an authenticated client: the active token's record when the caller
   * may learn about it, else undefined (the caller answers `{"active":false}`). A client learns
   * about its own tokens; about others' only a system client with the gateway scope (resource
   * servers and gateways), so one application's credentials reveal nothing of another's tokens.
   */
  async introspect(caller: OAuthClient, token: string): Promise<TokenRecord | undefined> {
    const record = await this.lookup(token);
    if (!record || !this.isActive(record)) return undefined;
    return record.consumerKey === caller.consumerKey || mayIntrospectAny(caller) ? record : undefined;
  }

  /** The stored record of an access token, whether or not it is still active. */
  async lookup(token: string): Promise<TokenRecord | undefined> {
    if (token === "") return undefined;
    if (!(await this.keys.vouchFor(token, this.config().issuer))) return undefined;
    return this.store.tokens.findByHash(hashToken(token));
  }

  /** The client an access or refresh token was issued to, if this service issued it. */
  async clientOf(token: string): Promise<string | undefined> {
    const hash = hashToken(token);
    const record = (await this.store.tokens.findByHash(hash)) ?? (await this.store.tokens.findByRefreshHash(hash));
    return record?.consumerKey;
  }

  /** Revokes an access or refresh token. Unknown or already revoked tokens are not an error (RFC 7009). */
  async revoke(token: string, options: { tokenTypeHint?: string; consumerKey?: string } = {}): Promise<void> {
    const hash = hashToken(token);
    const byHint = options.tokenTypeHint === "refresh_token";
    const record =
      (byHint ? await this.store.tokens.findByRefreshHash(hash) : await this.store.tokens.findByHash(hash)) ??
      (byHint ? await this.store.tokens.findByHash(hash) : await this.store.tokens.findByRefreshHash(hash));
    if (!record || (options.consumerKey && record.consumerKey !== options.consumerKey)) return;
    const now = this.clock.now();
    if (record.refreshHash === hash) {
      // Revoking a refresh token ends the grant: every token descending from it.
      await this.revokeFamily(record, now);
    } else {
      await this.store.transaction(async (s) => {
        await s.tokens.revoke(record.id, now);
        s.changed({ kind: "token", tokenHash: record.tokenHash });
      });
    }
  }

  /** A page of the active tokens of a client, newest first. */
  async activeTokens(consumerKey: string, page: PageQuery): Promise<Page<TokenRecord>> {
    await this.store.clients.get(consumerKey);
    return this.store.tokens.listActive(consumerKey, this.clock.now(), page);
  }

  /** The newest active application token of a client (among its newest 1000), as the store shows it. */
  async latestApplicationToken(consumerKey: string): Promise<TokenRecord> {
    const tokens = (await this.activeTokens(consumerKey, { limit: 1000 })).items;
    const token = tokens.find((t) => t.endUser === "");
    if (!token) throw new NotFoundError("the client has no active application token");
    return token;
  }

  isActive(record: TokenRecord): boolean {
    return isActive(record, this.clock.nowMs());
  }
}

/**
 * Takes, until the transaction ends, the turn to change the token families of a user. Families
 * with refresh tokens come from the password grant, so each has its end user; rotations, family
 * revocations and the user's password change (which updates the same row) take turns on the
 * user's row, one lock for all of them. The second, reading after the first committed, sees the
 * token the first added or the revocation it made, and no two lock each other's rows in turn.
 */
async function lockFamilies(s: Store, endUser: string): Promise<void> {
  if (endUser !== "") await s.users.find(endUser, LOCK);
}

function invalidUserCredentials(): InvalidArgumentError {
  return new InvalidArgumentError([{ field: "resource_owner_password", description: "invalid resource owner credentials" }], { oauth: "invalid_grant" });
}

function invalidCode(description: string): InvalidArgumentError {
  return new InvalidArgumentError([{ field: "code", description }], { oauth: "invalid_grant" });
}

function invalidRefreshToken(): InvalidArgumentError {
  return new InvalidArgumentError([{ field: "refresh_token", description: "invalid refresh token" }], { oauth: "invalid_grant" });
}

/** Resource servers and gateways: system clients holding the gateway scope. */
function mayIntrospectAny(client: OAuthClient): boolean {
  return client.system === true && client.scopes.includes(SCOPES.gateway);
}

/** A system client asking for no scope gets all of its own; applications get "default". */
function scopesFor(client: OAuthClient, requested: readonly string[]): string[] {
  return client.system && requested.length === 0 ? [...client.scopes] : grantScopes(requested, client.scopes);
}

/** Client id and secret are there (empty only: a blank-looking secret is still a secret, judged by client authentication). */
function checkCredentialsGiven(r: AccessTokenRequest): void {
  const v = new Validator();
  if (r.clientId === "") v.add("client_id", "is required");
  if (r.clientSecret === "") v.add("client_secret", "is required");
  v.throwIfInvalid({ oauth: "invalid_request" });
}

/** The rest of a token request, once its client is authenticated. */
function checkRequest(r: AccessTokenRequest): void {
  const v = new Validator();
  const missing = (field: string, value: string) => value === "" && v.add(field, "is required");
  missing("grant_type", r.grantType);
  if (r.grantType === "password") missing("resource_owner_username", r.resourceOwnerUsername);
  if (r.grantType === "refresh_token") missing("refresh_token", r.refreshToken);
  if (!Number.isSafeInteger(r.validityPeriodSeconds) || r.validityPeriodSeconds < 0) {
    v.add("validity_period_seconds", "must not be negative");
  }
  checkScopes(v, "scopes", r.scopes);
  v.throwIfInvalid({ oauth: "invalid_request" });
}

/** A refused token request as the grants metric names it: its OAuth2 error, "throttled", or "error". */
function grantOutcome(err: unknown): string {
  if (!(err instanceof DomainError)) return "error";
  if (err.kind === "resource_exhausted") return "throttled";
  return err.oauth ?? (err.kind === "unauthenticated" ? "invalid_client" : "invalid_request");
}
