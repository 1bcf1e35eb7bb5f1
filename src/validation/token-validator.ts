import {
  type AsyncFacts,
  type Decision,
  decideEager,
  KeyManagerUnavailable,
  ResourceTable,
  Status,
  type TokenFacts,
  unexpectedFailure,
  withoutQuery,
} from "@keymanager/core";
import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { UnavailableError } from "../domain/errors.js";
import type { Api, AuthLevel, KeyMapping, Subscription, TokenRecord } from "../domain/model/index.js";
import type { SigningKeys } from "../oauth/signing-keys.js";
import { hashToken } from "../oauth/token-hash.js";
import type { Store } from "../storage/store.js";
import type { DecisionCache } from "./decision-cache.js";
import { SameRefusals } from "./same-refusals.js";
import { apiKey, subscriptionKey, type ValidationCache } from "./validation-cache.js";

export interface ValidationRequest {
  context: string;
  version: string;
  accessToken: string;
  /** undefined: the registered resource's level. */
  requiredAuthLevel: AuthLevel | undefined;
  /** The URI template the gateway matched; empty: match `requestPath`. */
  matchingResource: string;
  /** The raw request path from the context on; used when matchingResource is empty. */
  requestPath?: string;
  httpVerb: string;
}

/** The answer and the facts it was decided on (@keymanager/core's decision rules). */
export type ValidationResult = Decision;

/** Tokens issued by external key managers (keymanager/key-manager-registry.ts). */
export interface ExternalTokenSource {
  externalForToken(token: string): ExternalTokenValidator | undefined;
}

export interface ExternalTokenValidator {
  /** The key manager's configured name, for 900912's description. */
  readonly name: string;
  /** How long its answers may be kept. */
  readonly validationCacheMs: number;
  /** The token when active, undefined when not; UnavailableError when its key manager cannot say. */
  validationRecord(token: string, tokenHash: string): Promise<TokenRecord | undefined>;
}

/**
 * The gateway's question: may this token call this resource of this API with this verb?
 * Every answer is a status code; failures are answers. The server's part is gathering the facts
 * (through the caches, each read only when the rules get that far); the rules themselves are
 * @keymanager/core's, the same a gateway or ext_authz applies.
 */
export class TokenValidator {
  /** Unknown tokens' refusals, one object per resource and kind (their messages built once). */
  private readonly refusals = new SameRefusals();

  constructor(
    private readonly store: Store,
    private readonly keys: SigningKeys,
    private readonly cache: ValidationCache,
    private readonly decisions: DecisionCache<ValidationResult>,
    private readonly config: () => Config,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly external?: ExternalTokenSource,
  ) {}

  /**
   * The answer, synchronously when a still-valid one is cached (the common case of the hot path,
   * which then costs a hash and a map lookup), else a promise of it.
   */
  validate(req: ValidationRequest): ValidationResult | Promise<ValidationResult> {
    let tokenHash: string;
    let key: string;
    try {
      tokenHash = req.accessToken === "" ? "" : hashToken(req.accessToken);
      key = decisionKey(req, tokenHash);
      const known = this.decisions.get(key, this.clock.nowMs());
      if (known) return known;
    } catch (err) {
      return this.failed(err, req);
    }
    return this.decide(req, tokenHash, key);
  }

  /**
   * Works the answer out from the facts, synchronously when the caches hold every fact it needs
   * (an unknown token's refusal, its "not found" kept; an answer that was just dropped by a
   * change of something else), else once they are read.
   */
  private decide(req: ValidationRequest, tokenHash: string, key: string): ValidationResult | Promise<ValidationResult> {
    let worked: { result: ValidationResult | Promise<ValidationResult>; facts: CachedFacts; now: number; generation: number };
    try {
      const now = this.clock.nowMs();
      const generation = this.decisions.generation;
      const facts = new CachedFacts(this, req.accessToken, tokenHash);
      const result = decideEager(facts, {
        context: req.context,
        version: req.version,
        hasToken: req.accessToken !== "",
        requiredAuthLevel: req.requiredAuthLevel,
        matchingResource: req.matchingResource,
        requestPath: req.requestPath ?? "",
        httpVerb: req.httpVerb,
        now,
      });
      worked = { result, facts, now, generation };
    } catch (err) {
      return this.failed(err, req);
    }
    const { result, facts, now, generation } = worked;
    if (result instanceof Promise) {
      return result.then(
        (r) => this.decided(req, tokenHash, key, r, facts, now, generation),
        (err: unknown) => this.failed(err, req),
      );
    }
    return this.decided(req, tokenHash, key, result, facts, now, generation);
  }

  /** Keeps the answer for as long as it holds (not an unknown token's), and gives it. */
  private decided(
    req: ValidationRequest,
    tokenHash: string,
    key: string,
    result: ValidationResult,
    facts: CachedFacts,
    now: number,
    generation: number,
  ): ValidationResult {
    try {
      const validUntil = this.validUntil(req, result, now);
      // An unknown token's refusal is not kept: anyone can make up any number of them. Its
      // "not found" is (validation cache, bounded by bytes), so asking again costs no read. A
      // known token's refusal (expired, revoked: as many as were issued) is kept like an answer.
      const unknownToken = req.accessToken !== "" && !facts.tokenKnown;
      if (unknownToken) return this.refusals.same(result);
      if (validUntil !== undefined) this.decisions.set(key, result, validUntil, generation, tokenHash);
      return result;
    } catch (err) {
      return this.failed(err, req);
    }
  }

  /** How long an answer is kept: never past its token's expiry, nor its key manager's cache TTL. */
  private validUntil(req: ValidationRequest, result: ValidationResult, now: number): number | undefined {
    // The key manager may be back at the next call.
    if (result.status === Status.KEY_MANAGER_NOT_AVAILABLE) return undefined;
    const external = req.accessToken === "" ? undefined : this.external?.externalForToken(req.accessToken);
    const ttl = Math.min(this.cache.limits.ttlMs, external?.validationCacheMs ?? Infinity);
    const refusal = now + Math.min(ttl, this.cache.limits.negativeTtlMs);
    if (!result.token) return refusal;
    const expiresAt = result.token.expiresAt.getTime();
    // An expired token stays expired: its refusal is kept like any other (it was never kept:
    // its expiry had passed), so a gateway retrying one does not redo the whole check each time.
    return expiresAt <= now ? refusal : Math.min(expiresAt, now + ttl);
  }

  private failed(err: unknown, req: ValidationRequest): ValidationResult {
    this.logger.error({ err, context: req.context, version: req.version }, "token validation failed");
    return unexpectedFailure();
  }

  api(context: string, version: string): Api | undefined | Promise<Api | undefined> {
    return this.cache.read(this.cache.apis, apiKey(context, version), () => this.store.apis.findByContext(context, version));
  }

  resources(apiId: string): ResourceTable | undefined | Promise<ResourceTable | undefined> {
    return this.cache.read(this.cache.resources, apiId, async () => {
      const registered = await this.store.resources.get(apiId).catch(() => undefined);
      return registered && new ResourceTable(registered.resources);
    });
  }

  subscription(applicationId: string, apiId: string): Subscription | undefined | Promise<Subscription | undefined> {
    return this.cache.read(this.cache.subscriptions, subscriptionKey(applicationId, apiId), () => this.store.subscriptions.find(applicationId, apiId));
  }

  /** The token's facts, or KeyManagerUnavailable when its key manager cannot say (900912). */
  token(accessToken: string, hash: string): TokenFacts | KeyManagerUnavailable | undefined | Promise<TokenFacts | KeyManagerUnavailable | undefined> {
    const external = this.external?.externalForToken(accessToken);
    const read = external
      ? external.validationRecord(accessToken, hash)
      : this.cache.read(this.cache.tokens, hash, async () => {
          const genuine = await this.keys.vouchFor(accessToken, this.config().issuer);
          return genuine ? this.store.tokens.findByHash(hash) : undefined;
        });
    if (!(read instanceof Promise)) return read;
    return read.catch((err: unknown) => {
      if (err instanceof UnavailableError) return new KeyManagerUnavailable(external?.name ?? this.config().name);
      throw err;
    });
  }

  keyMapping(consumerKey: string): KeyMapping | undefined | Promise<KeyMapping | undefined> {
    return this.cache.read(this.cache.applications, consumerKey, async () => {
      const mapping = await this.store.applicationKeys.findByConsumerKey(consumerKey);
      const client = mapping ? await this.store.clients.find(consumerKey) : undefined;
      if (!mapping || !client) return undefined;
      return {
        consumerKey,
        applicationId: mapping.applicationId,
        applicationName: mapping.applicationName || client.clientName,
        applicationTier: mapping.applicationTier,
        keyType: mapping.keyType,
        subscriber: client.appOwner,
        keyManager: client.keyManager,
      };
    });
  }
}

function isTokenFacts(token: TokenFacts | KeyManagerUnavailable | undefined): boolean {
  return token !== undefined && !(token instanceof KeyManagerUnavailable);
}

/** One request's facts for the decision rules, read through the caches (a class, not closures: made on every worked-out answer). */
class CachedFacts implements AsyncFacts {
  constructor(
    private readonly validator: TokenValidator,
    private readonly accessToken: string,
    private readonly tokenHash: string,
  ) {}

  api(context: string, version: string) {
    return this.validator.api(context, version);
  }

  resources(api: Pick<Api, "apiId">) {
    return this.validator.resources(api.apiId);
  }

  /** Whether the token was looked up and is one of ours or a key manager's (expired or revoked too). */
  tokenKnown = false;

  token() {
    const found = this.validator.token(this.accessToken, this.tokenHash);
    if (found instanceof Promise) {
      return found.then((token) => {
        this.tokenKnown = isTokenFacts(token);
        return token;
      });
    }
    this.tokenKnown = isTokenFacts(found);
    return found;
  }

  keyMapping(consumerKey: string) {
    return this.validator.keyMapping(consumerKey);
  }

  subscription(applicationId: string, apiId: string) {
    return this.validator.subscription(applicationId, apiId);
  }
}

/** Everything an answer depends on besides stored state; the token only as its hash, the path without its query. */
function decisionKey(req: ValidationRequest, tokenHash: string): string {
  const path = req.matchingResource === "" ? withoutQuery(req.requestPath ?? "") : "";
  return `${tokenHash}\u0000${req.context}\u0000${req.version}\u0000${req.matchingResource}\u0000${path}\u0000${req.httpVerb}\u0000${req.requiredAuthLevel ?? ""}`;
}
