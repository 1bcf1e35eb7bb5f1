import type { Logger } from "pino";
import type { Config } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { UnavailableError } from "../domain/errors.js";
import type { Api, ApiResource, AuthLevel, KeyMapping, KeyType, Subscription, TokenRecord } from "../domain/model/index.js";
import type { SigningKeys } from "../oauth/signing-keys.js";
import { hashToken } from "../oauth/token-hash.js";
import type { Store } from "../storage/store.js";
import { normaliseContext } from "../subscriptions/subscription-manager.js";
import type { DecisionCache } from "./decision-cache.js";
import { Status, type ValidationStatus } from "./status-codes.js";
import { apiKey, resourceKey, subscriptionKey, type ValidationCache } from "./validation-cache.js";

export interface ValidationRequest {
  context: string;
  version: string;
  accessToken: string;
  /** undefined: the registered resource's level. */
  requiredAuthLevel: AuthLevel | undefined;
  matchingResource: string;
  httpVerb: string;
}

export interface ValidationResult {
  status: ValidationStatus;
  authorized: boolean;
  token?: TokenRecord;
  application?: KeyMapping;
  subscription?: Subscription;
  api?: Api;
  resource?: ApiResource;
}

/** Tokens issued by external key managers (keymanager/key-manager-registry.ts). */
export interface ExternalTokenSource {
  externalForToken(token: string): ExternalTokenValidator | undefined;
}

export interface ExternalTokenValidator {
  /** How long its answers may be kept. */
  readonly validationCacheMs: number;
  /** The token when active, undefined when not; UnavailableError when its key manager cannot say. */
  validationRecord(token: string, tokenHash: string): Promise<TokenRecord | undefined>;
}

/**
 * The gateway's question: may this token call this resource of this API with this verb?
 * Every answer is a status code; failures are answers. Reads go through the cache.
 */
export class TokenValidator {
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
      const known = this.decisions.get(key, this.clock.now().getTime());
      if (known) return known;
    } catch (err) {
      return this.failed(err, req);
    }
    return this.decide(req, tokenHash, key);
  }

  private async decide(req: ValidationRequest, tokenHash: string, key: string): Promise<ValidationResult> {
    try {
      const now = this.clock.now().getTime();
      const generation = this.decisions.generation;
      const result = await this.check(req, tokenHash);
      const validUntil = this.validUntil(req, result, now);
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
    return { status: Status.GENERAL_ERROR, authorized: false };
  }

  private async check(req: ValidationRequest, tokenHash: string): Promise<ValidationResult> {
    const api = await this.api(normaliseContext(req.context), req.version);
    if (!api) return deny(Status.RESOURCE_FORBIDDEN);
    const resource = await this.resource(api.apiId, req.httpVerb.toUpperCase(), req.matchingResource);
    if (!resource) return deny(Status.INCORRECT_API_RESOURCE, { api });
    const level = req.requiredAuthLevel ?? resource.authLevel;
    if (level === "NONE") return { status: Status.OK, authorized: true, api, resource };
    if (req.accessToken === "") return deny(Status.MISSING_CREDENTIALS, { api, resource });

    let token: TokenRecord | undefined;
    try {
      token = await this.token(req.accessToken, tokenHash);
    } catch (err) {
      if (err instanceof UnavailableError) return deny(Status.KEY_MANAGER_NOT_AVAILABLE, { api, resource });
      throw err;
    }
    const now = this.clock.now().getTime();
    if (!token || token.revokedAt || token.expiresAt.getTime() <= now) return deny(Status.INVALID_CREDENTIALS, { api, resource });
    const appToken = token.endUser === "";
    if ((level === "APPLICATION" && !appToken) || (level === "APPLICATION_USER" && appToken)) {
      return deny(Status.INCORRECT_ACCESS_TOKEN_TYPE, { api, resource, token });
    }
    const application = await this.application(token.consumerKey);
    if (!application) return deny(Status.RESOURCE_FORBIDDEN, { api, resource, token });
    const subscription = await this.subscription(application.applicationId, api.apiId);
    if (!subscription) return deny(Status.RESOURCE_FORBIDDEN, { api, resource, token, application });
    const blocked = subscriptionStatus(subscription, application.keyType);
    if (blocked) return deny(blocked, { api, resource, token, application, subscription });
    if (resource.scopes.length > 0 && !resource.scopes.some((s) => token.scopes.includes(s))) {
      return deny(Status.INVALID_SCOPE, { api, resource, token, application, subscription });
    }
    return { status: Status.OK, authorized: true, api, resource, token, application, subscription };
  }

  private token(accessToken: string, hash: string): Promise<TokenRecord | undefined> {
    const external = this.external?.externalForToken(accessToken);
    if (external) return external.validationRecord(accessToken, hash);
    return this.cache.through(this.cache.tokens, hash, async () => {
      const genuine = await this.keys.vouchFor(accessToken, this.config().issuer);
      return genuine ? this.store.tokens.findByHash(hash) : undefined;
    });
  }

  private api(context: string, version: string): Promise<Api | undefined> {
    return this.cache.through(this.cache.apis, apiKey(context, version), () => this.store.apis.findByContext(context, version));
  }

  private async resource(apiId: string, verb: string, uriTemplate: string): Promise<ApiResource | undefined> {
    const resources = await this.cache.through(this.cache.resources, apiId, async () => {
      const registered = await this.store.resources.get(apiId).catch(() => undefined);
      return registered && new Map(registered.resources.map((r) => [resourceKey(r.httpVerb, r.uriTemplate), r]));
    });
    return resources?.get(resourceKey(verb, uriTemplate));
  }

  private application(consumerKey: string): Promise<KeyMapping | undefined> {
    return this.cache.through(this.cache.applications, consumerKey, async () => {
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

  private subscription(applicationId: string, apiId: string): Promise<Subscription | undefined> {
    return this.cache.through(this.cache.subscriptions, subscriptionKey(applicationId, apiId), () => this.store.subscriptions.find(applicationId, apiId));
  }
}

/** Everything an answer depends on besides stored state; the token only as its hash. */
function decisionKey(req: ValidationRequest, tokenHash: string): string {
  return `${tokenHash}\u0000${req.context}\u0000${req.version}\u0000${req.matchingResource}\u0000${req.httpVerb}\u0000${req.requiredAuthLevel ?? ""}`;
}

function deny(status: ValidationStatus, details: Omit<ValidationResult, "status" | "authorized"> = {}): ValidationResult {
  return { status, authorized: false, ...details };
}

function subscriptionStatus(s: Subscription, keyType: KeyType): ValidationStatus | undefined {
  if (s.state === "BLOCKED" || (s.state === "PROD_ONLY_BLOCKED" && keyType === "PRODUCTION")) return Status.API_BLOCKED;
  if (s.state === "ON_HOLD" || s.state === "REJECTED") return Status.SUBSCRIPTION_INACTIVE;
  return undefined;
}
