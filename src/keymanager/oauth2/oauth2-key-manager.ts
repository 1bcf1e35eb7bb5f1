import type { Logger } from "pino";
import type { Config } from "../../config/config.js";
import type { ExternalKeyManagerConfig } from "../../config/external-key-managers.js";
import type { ChangeEvents } from "../../domain/change-events.js";
import type { Clock } from "../../domain/clock.js";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, UnavailableError, UnimplementedError } from "../../domain/errors.js";
import { Validator } from "../../domain/validator.js";
import { looksLikeJwt } from "../../oauth/signing-keys.js";
import { hashToken } from "../../oauth/token-hash.js";
import type {
  AccessTokenInfo,
  AccessTokenRequest,
  ApplicationKeyMapping,
  ApplicationKeyRef,
  ClientSettings,
  ConsumerCredentials,
  ConsumerSecretRecord,
  OAuthApplication,
  OAuthClient,
  RegisteredResource,
  TokenRecord,
  ValidityPeriods,
} from "../../domain/model/index.js";
import type { ApplicationPatch, CreateApplicationInput, MapApplicationInput } from "../key-manager.js";
import type { ClientRegistrationRecord } from "../../storage/registration-repository.js";
import type { Store } from "../../storage/store.js";
import { ConsumerSecretRefused, type KeyManager, type MapOptions, NO_CLIENT, NO_KEYS, type Precondition } from "../key-manager.js";
import { unknownTokenInfo } from "../token-info.js";
import { checkAvailableGrantTypes, checkClientSettings, checkConsumerKey, checkIdentifier, LIMITS } from "../validation.js";
import { defaultGrantTypes, requireAppCreation, requireAppMapping, requireTokenGeneration } from "../features.js";
import { ClientRegistration, type RegisteredClient } from "./client-registration.js";
import { EndpointResolver } from "./endpoints.js";
import { recordFromIntrospection, recordFromJwt, JwksVerifier, revokedExternalJwt, unverifiedExpiry } from "./external-tokens.js";
import { OAuth2HttpClient } from "./http-client.js";
import { TokenEndpoints } from "./token-endpoints.js";
import type { ExternalTokenCache } from "./token-cache.js";
import type { Page } from "../../domain/paging.js";
import { changeOwner } from "../application-owner.js";
import { type CreatedConsumerSecret, NO_SECRET, type NewConsumerSecret } from "../consumer-secrets.js";

export interface OAuth2KeyManagerDeps {
  config: ExternalKeyManagerConfig;
  /** The service's configuration: validity defaults and limits of locally kept client settings. */
  serviceConfig: () => Config;
  store: Store;
  clock: Clock;
  events: ChangeEvents;
  cache: ExternalTokenCache;
  logger: Logger;
  fetch?: typeof fetch;
}

/**
 * A key manager that is an external, standards-based OAuth2 server: clients by RFC 7591/7592,
 * tokens from its RFC 6749 token endpoint, validation by RFC 7662 introspection or its JWKS,
 * revocation by RFC 7009. This service keeps each client's settings, its (encrypted) secret and
 * registration access token and the application mapping, written only once the server has
 * answered; a local write that fails after a registration deletes the registered client again.
 */
export class OAuth2KeyManager implements KeyManager {
  readonly type = "oauth2";
  readonly name: string;
  private readonly registration: ClientRegistration;
  private readonly tokenEndpoints: TokenEndpoints;
  private readonly jwks: JwksVerifier;

  constructor(private readonly deps: OAuth2KeyManagerDeps) {
    const { config } = deps;
    this.name = config.name;
    const http = new OAuth2HttpClient(config.name, config.timeoutMs, deps.fetch);
    const endpoints = new EndpointResolver(config, http);
    this.registration = new ClientRegistration(config.name, http, endpoints, config.initialAccessToken);
    this.tokenEndpoints = new TokenEndpoints(config.name, http, endpoints, config.credentials);
    this.jwks = new JwksVerifier(config.name, config.issuer, config.timeoutMs, () => endpoints.get("jwks"));
  }

  get validationCacheMs(): number {
    return this.deps.config.validationCacheSeconds * 1000;
  }

  get issuer(): string {
    return this.deps.config.issuer;
  }

  /** Whether an opaque token is this server's by its declared pattern (the whole token). */
  claimsOpaqueToken(token: string): boolean {
    return this.deps.config.tokenPattern?.test(token) ?? false;
  }

  async createApplication(input: CreateApplicationInput): Promise<OAuthApplication> {
    requireAppCreation(this.name, this.deps.config.features);
    const settings = this.settingsOf(input);
    const v = new Validator();
    checkIdentifier(v, "application_id", input.applicationId);
    checkClientSettings(v, settings, this.deps.serviceConfig().validity.maxTokenSeconds);
    // Registered at the external server as a confidential client (RFC 7591 defaults): public ones are the resident key manager's.
    if (input.publicClient) v.add("token_endpoint_auth_method", "an external key manager registers confidential clients only");
    checkAvailableGrantTypes(v, settings.grantTypes, this.deps.config.features.availableGrantTypes, this.name);
    v.optionalText("app_owner", input.appOwner, LIMITS.name);
    v.optionalText("group_id", input.groupId, LIMITS.name);
    v.optionalText("application_name", input.applicationName, LIMITS.name);
    v.optionalText("application_tier", input.applicationTier, LIMITS.tier);
    v.throwIfInvalid();
    await this.ensureNoKeys(this.deps.store, input);

    const remote = await this.registration.register(settings);
    const now = this.deps.clock.now();
    const { client, mapping } = this.newKeys(input, withRemote(settings, remote), { consumerKey: remote.clientId, consumerSecret: remote.clientSecret }, now, {
      mode: "CREATED",
      applicationName: input.applicationName || input.clientName,
      applicationTier: input.applicationTier || "Unlimited",
    });
    try {
      await this.deps.store.transaction(async (s) => {
        await this.ensureNoKeys(s, input);
        await s.clients.insert(client);
        await s.applicationKeys.insert(mapping);
        await s.registrations.insert(registrationRecord(this.name, remote, now));
        s.changed({ kind: "application", consumerKey: client.consumerKey });
      });
    } catch (err) {
      await this.compensate(remote);
      throw err;
    }
    return { client, mapping };
  }

  async updateApplication(consumerKey: string, patch: ApplicationPatch, precondition?: Precondition): Promise<OAuthApplication> {
    const current = await this.client(consumerKey);
    // Checked against the state kept here; the server's update is not conditional (RFC 7592).
    precondition?.({ client: current, mapping: await this.deps.store.applicationKeys.findByConsumerKey(consumerKey) });
    const settings = this.withDefaults({ ...settingsOf(current), ...patch, validity: { ...current.validity, ...patch.validity } });
    const v = new Validator();
    checkClientSettings(v, settings, this.deps.serviceConfig().validity.maxTokenSeconds);
    if (patch.grantTypes) checkAvailableGrantTypes(v, settings.grantTypes, this.deps.config.features.availableGrantTypes, this.name);
    v.throwIfInvalid();
    const registration = await this.registrationOf(consumerKey);
    const remote = await this.registration.update(access(registration), consumerKey, settings);
    const updated = await this.saveRemote(current, withRemote(settings, remote), remote);
    return { client: updated, mapping: await this.deps.store.applicationKeys.findByConsumerKey(consumerKey) };
  }

  /** The server's view of the client (RFC 7592 read) over the settings kept here. */
  async retrieveApplication(consumerKey: string): Promise<OAuthApplication> {
    const current = await this.client(consumerKey);
    const registration = await this.deps.store.registrations.find(consumerKey);
    const mapping = await this.deps.store.applicationKeys.findByConsumerKey(consumerKey);
    if (!registration) return { client: current, mapping };
    const remote = await this.registration.read(access(registration));
    return { client: { ...current, ...withRemote(settingsOf(current), remote), consumerSecret: remote.clientSecret || current.consumerSecret }, mapping };
  }

  async retrieveApplicationByKey(ref: ApplicationKeyRef): Promise<OAuthApplication> {
    const mapping = await this.deps.store.applicationKeys.findByRef(ref);
    if (!mapping) throw new NotFoundError(NO_KEYS);
    return this.retrieveApplication(mapping.consumerKey);
  }

  /** At the server first: a local delete after a failed remote one would orphan the remote client. */
  async deleteApplication(consumerKey: string): Promise<void> {
    await this.client(consumerKey);
    const registration = await this.registrationOf(consumerKey);
    await this.registration.delete(access(registration));
    await this.deps.store.transaction(async (s) => {
      await s.applicationKeys.deleteByConsumerKey(consumerKey);
      await s.clients.delete(consumerKey);
      s.changed({ kind: "application", consumerKey });
      s.changed({ kind: "tokens", consumerKey });
    });
  }

  /**
   * Semi-manual mode: a client registered at the server by other means is recorded as given.
   * Without its registration access token, this service cannot update or delete it there.
   */
  async mapOAuthApplication(input: MapApplicationInput, options: MapOptions): Promise<OAuthApplication> {
    requireAppMapping(this.name, this.deps.config.features);
    const v = new Validator();
    checkIdentifier(v, "application_id", input.applicationId);
    checkConsumerKey(v, "consumer_key", input.consumerKey);
    v.text("consumer_secret", input.consumerSecret, LIMITS.secret);
    v.optionalText("app_owner", input.appOwner, LIMITS.name);
    v.optionalText("group_id", input.groupId, LIMITS.name);
    const settings = this.withDefaults({
      clientName: input.clientName || `${input.applicationId}_${input.keyType}`,
      callbackUrls: input.callbackUrls,
      grantTypes: input.grantTypes.length > 0 ? input.grantTypes : defaultGrantTypes(this.deps.config.features),
      scopes: [],
      tokenType: "OPAQUE",
      validity: zeroValidity(),
      additionalProperties: {},
    });
    checkClientSettings(v, settings, this.deps.serviceConfig().validity.maxTokenSeconds);
    checkAvailableGrantTypes(v, settings.grantTypes, this.deps.config.features.availableGrantTypes, this.name);
    v.throwIfInvalid();
    const now = this.deps.clock.now();
    const credentials = { consumerKey: input.consumerKey, consumerSecret: input.consumerSecret };
    const { client, mapping } = this.newKeys(input, settings, credentials, now, { mode: "MAPPED", applicationName: "", applicationTier: "Unlimited" });
    await this.deps.store.transaction(async (s) => {
      await this.ensureNoKeys(s, input);
      const existing = await s.clients.find(input.consumerKey);
      // Another's client, a system client's id or another key manager's client: the one refusal
      // that tells nothing about it (ConsumerSecretRefused). The caller's own is just taken.
      if (existing && (existing.system || existing.keyManager !== this.name || !options.mayUse(existing))) throw new ConsumerSecretRefused();
      if (existing) throw new AlreadyExistsError("an OAuth client with this consumer key already exists");
      await s.clients.insert(client);
      await s.applicationKeys.insert(mapping);
      s.changed({ kind: "application", consumerKey: input.consumerKey });
    });
    return { client, mapping };
  }

  /** An application's keys as first stored here: the client held by this key manager, and its mapping. */
  private newKeys(
    owner: { applicationId: string; keyType: ApplicationKeyMapping["keyType"]; appOwner: string; groupId: string },
    settings: ClientSettings,
    credentials: ConsumerCredentials,
    now: Date,
    mapping: Pick<ApplicationKeyMapping, "mode" | "applicationName" | "applicationTier">,
  ): { client: OAuthClient; mapping: ApplicationKeyMapping } {
    return {
      client: {
        ...settings,
        consumerKey: credentials.consumerKey,
        consumerSecret: credentials.consumerSecret,
        appOwner: owner.appOwner,
        groupId: owner.groupId,
        keyManager: this.name,
        createdAt: now,
        updatedAt: now,
      },
      mapping: {
        ...mapping,
        applicationId: owner.applicationId,
        keyType: owner.keyType,
        consumerKey: credentials.consumerKey,
        keyState: "COMPLETED",
        createdAt: now,
        updatedAt: now,
      },
    };
  }

  async deleteMappedApplication(consumerKey: string): Promise<void> {
    await this.deps.store.transaction(async (s) => {
      if (!(await s.applicationKeys.deleteByConsumerKey(consumerKey))) {
        throw new NotFoundError("the consumer key is not mapped to an application");
      }
      s.changed({ kind: "application", consumerKey });
    });
  }

  /**
   * RFC 7592 has no "new secret" operation; a server may issue one in answer to an update
   * (section 2.2). A server that keeps the secret is FAILED_PRECONDITION, and nothing changes.
   */
  async regenerateConsumerSecret(consumerKey: string): Promise<ConsumerCredentials> {
    const current = await this.client(consumerKey);
    const registration = await this.registrationOf(consumerKey);
    const remote = await this.registration.update(access(registration), consumerKey, settingsOf(current));
    if (remote.clientSecret === "" || remote.clientSecret === current.consumerSecret) {
      throw new FailedPreconditionError(`key manager "${this.name}" does not issue new client secrets on registration update`);
    }
    await this.saveRemote(current, settingsOf(current), remote);
    return { consumerKey, consumerSecret: remote.clientSecret };
  }

  /** The owner is this service's record (RFC 7591 has none): changed here, the server is not asked. */
  async updateApplicationOwner(consumerKey: string, owner: string, precondition?: Precondition): Promise<OAuthApplication> {
    await this.client(consumerKey);
    return changeOwner(this.deps.store, this.deps.clock, consumerKey, owner, precondition);
  }

  /** RFC 7591/7592 give a client one secret: the server keeps it, and this service cannot add others. */
  async createConsumerSecret(input: NewConsumerSecret): Promise<CreatedConsumerSecret> {
    await this.client(input.consumerKey);
    throw new FailedPreconditionError(`key manager "${this.name}" holds one secret per client (RFC 7591): no consumer secret can be added to it`);
  }

  /** None: secrets cannot be added to this server's clients. */
  async listConsumerSecrets(consumerKey: string): Promise<Page<ConsumerSecretRecord>> {
    await this.client(consumerKey);
    return { items: [] };
  }

  async revokeConsumerSecret(consumerKey: string): Promise<void> {
    await this.client(consumerKey);
    throw new NotFoundError(NO_SECRET);
  }

  async getNewApplicationAccessToken(request: AccessTokenRequest): Promise<AccessTokenInfo> {
    requireTokenGeneration(this.name, this.deps.config.features, request.grantType);
    if (request.tokenToRevoke !== "") {
      // As the resident key manager: an old token that is gone, or cannot be taken back, stops nothing.
      await this.revokeToken(request.tokenToRevoke, "access_token").catch((err: unknown) => {
        if (err instanceof UnavailableError) throw err;
      });
    }
    const issued = await this.tokenEndpoints.token(request);
    const now = this.deps.clock.now();
    return {
      accessToken: issued.accessToken,
      refreshToken: issued.refreshToken,
      tokenId: "",
      tokenValid: true,
      isApplicationToken: request.grantType === "client_credentials",
      consumerKey: request.clientId,
      scopes: issued.scopes.length > 0 ? issued.scopes : request.scopes,
      tokenState: "ACTIVE",
      issuedAt: now,
      validityPeriodMs: issued.expiresInSeconds * 1000,
      errorCode: "",
      endUserName: request.resourceOwnerUsername,
      keyManager: this.name,
      tokenType: looksLikeJwt(issued.accessToken) ? "JWT" : "OPAQUE",
    };
  }

  async getTokenMetadata(accessToken: string): Promise<AccessTokenInfo> {
    const record = await this.validationRecord(accessToken);
    if (!record) return unknownTokenInfo(this.name);
    const now = this.deps.clock.now();
    const active = record.expiresAt.getTime() > now.getTime();
    return {
      accessToken: "",
      refreshToken: "",
      tokenId: record.id,
      tokenValid: active,
      isApplicationToken: record.endUser === "",
      consumerKey: record.consumerKey,
      scopes: record.scopes,
      tokenState: active ? "ACTIVE" : "EXPIRED",
      issuedAt: record.issuedAt,
      validityPeriodMs: record.expiresAt.getTime() - record.issuedAt.getTime(),
      errorCode: "",
      endUserName: record.endUser,
      keyManager: this.name,
      tokenType: record.tokenType,
    };
  }

  async getActiveTokensByConsumerKey(): Promise<Page<AccessTokenInfo>> {
    throw new UnimplementedError(`key manager "${this.name}" does not list tokens (OAuth2 has no such endpoint)`);
  }

  async getAccessTokenByConsumerKey(): Promise<AccessTokenInfo> {
    throw new UnimplementedError(`key manager "${this.name}" does not list tokens (OAuth2 has no such endpoint)`);
  }

  /**
   * RFC 7009, as the client the token was issued to when this service holds its secret. The
   * cached validation goes at once, here and (through the change feed) on other replicas.
   */
  async revokeToken(token: string, tokenTypeHint: string): Promise<void> {
    const owner = await this.ownerCredentials(token);
    await this.tokenEndpoints.revoke(token, tokenTypeHint, owner);
    const tokenHash = hashToken(token);
    await this.deps.store.transaction(async (s) => s.changed({ kind: "token", tokenHash, external: revokedExternalJwt(token, owner?.clientId ?? "") }));
    // A JWT verified by JWKS alone would pass again: remember the revocation until it expires.
    const now = this.deps.clock.nowMs();
    const until = unverifiedExpiry(token) ?? now + this.deps.config.validationCacheSeconds * 1000;
    if (until > now) this.deps.cache.set(tokenHash, undefined, until, this.deps.cache.currentEpoch);
  }

  async tokenClient(token: string): Promise<string | undefined> {
    const record = await this.validationRecord(token);
    return record?.consumerKey;
  }

  registerNewResource(): Promise<RegisteredResource> {
    return Promise.reject(resourcesAreResident());
  }

  getResourceByApiId(): Promise<RegisteredResource> {
    return Promise.reject(resourcesAreResident());
  }

  updateRegisteredResource(): Promise<RegisteredResource> {
    return Promise.reject(resourcesAreResident());
  }

  deleteRegisteredResourceByApiId(): Promise<void> {
    return Promise.reject(resourcesAreResident());
  }

  /** The external server's users are its own: it publishes their claims itself (its userinfo endpoint). */
  getUserClaims(): Promise<Record<string, string>> {
    return Promise.reject(new UnimplementedError("users are the resident key manager's: an external key manager's claims come from its own server"));
  }

  /**
   * The gateway check's view of a token of this server: undefined when it is not active.
   * UnavailableError when the server cannot say. Cached as configured, never past the token's expiry.
   */
  async validationRecord(token: string, tokenHash = hashToken(token)): Promise<TokenRecord | undefined> {
    const now = this.deps.clock.nowMs();
    const hit = this.deps.cache.get(tokenHash, now);
    if (hit) return hit.record;
    const epoch = this.deps.cache.currentEpoch;
    const ttlMs = this.deps.config.validationCacheSeconds * 1000;
    const record = await this.lookup(token, tokenHash, now, ttlMs);
    const active = record && record.expiresAt.getTime() > now && (await this.mayHold(record)) ? record : undefined;
    if (ttlMs > 0) this.deps.cache.set(tokenHash, active, Math.min(now + ttlMs, active?.expiresAt.getTime() ?? Infinity), epoch);
    return active;
  }

  /**
   * A token's client_id is this server's word: it must not name a client another key manager
   * holds here, or a server could speak for the resident key manager's applications.
   */
  private async mayHold(record: TokenRecord): Promise<boolean> {
    const client = await this.deps.store.clients.find(record.consumerKey);
    return !client || (client.keyManager === this.name && !client.system);
  }

  private async lookup(token: string, tokenHash: string, now: number, ttlMs: number): Promise<TokenRecord | undefined> {
    if (looksLikeJwt(token) && this.deps.config.jwtValidation === "jwks") {
      const payload = await this.jwks.verify(token, new Date(now));
      return payload ? recordFromJwt(payload, tokenHash, token, now, ttlMs, this.deps.config.features) : undefined;
    }
    const introspection = await this.tokenEndpoints.introspect(token);
    return introspection.active ? recordFromIntrospection(introspection, tokenHash, token, now, ttlMs) : undefined;
  }

  private async ownerCredentials(token: string) {
    const clientId = await this.tokenClient(token).catch((err: unknown) => {
      if (err instanceof UnavailableError) throw err;
      return undefined;
    });
    const client = clientId ? await this.deps.store.clients.find(clientId) : undefined;
    return client && client.keyManager === this.name ? { clientId: client.consumerKey, clientSecret: client.consumerSecret } : undefined;
  }

  /** Best effort: the registration is undone, or its leftover is logged for an operator. */
  private async compensate(remote: RegisteredClient): Promise<void> {
    try {
      await this.registration.delete({ uri: remote.registrationClientUri, accessToken: remote.registrationAccessToken });
    } catch (err) {
      this.deps.logger.error(
        { err, keyManager: this.name, consumerKey: remote.clientId },
        "registered client left at the key manager after a failed local write",
      );
    }
  }

  private async saveRemote(current: OAuthClient, settings: ClientSettings, remote: RegisteredClient): Promise<OAuthClient> {
    const now = this.deps.clock.now();
    await this.deps.store.transaction(async (s) => {
      await s.clients.updateSettings(current.consumerKey, settings, now);
      if (remote.clientSecret !== "" && remote.clientSecret !== current.consumerSecret) {
        await s.clients.updateSecret(current.consumerKey, remote.clientSecret, now);
      }
      await s.registrations.updateAccess(current.consumerKey, remote.registrationClientUri, remote.registrationAccessToken, now);
      await s.applicationKeys.touch(current.consumerKey, now);
      s.changed({ kind: "application", consumerKey: current.consumerKey });
    });
    return { ...current, ...settings, consumerSecret: remote.clientSecret || current.consumerSecret, updatedAt: now };
  }

  private async client(consumerKey: string): Promise<OAuthClient> {
    const client = await this.deps.store.clients.find(consumerKey);
    if (!client || client.system || client.keyManager !== this.name) throw new NotFoundError(NO_CLIENT);
    return client;
  }

  private async registrationOf(consumerKey: string): Promise<ClientRegistrationRecord> {
    const registration = await this.deps.store.registrations.find(consumerKey);
    if (!registration) {
      throw new FailedPreconditionError(`the client was mapped, not registered through this service: key manager "${this.name}" cannot be asked to change it`);
    }
    return registration;
  }

  private async ensureNoKeys(s: Store, ref: ApplicationKeyRef): Promise<void> {
    if (await s.applicationKeys.findByRef(ref)) throw new AlreadyExistsError(`the application already has ${ref.keyType} keys`);
  }

  private settingsOf(input: CreateApplicationInput): ClientSettings {
    return this.withDefaults({
      clientName: input.clientName,
      callbackUrls: input.callbackUrls,
      grantTypes: input.grantTypes.length > 0 ? input.grantTypes : ["client_credentials"],
      scopes: input.scopes,
      // The server decides its tokens' format; kept as asked, for the store's display.
      tokenType: input.tokenType ?? "OPAQUE",
      validity: input.validity,
      additionalProperties: input.additionalProperties,
    });
  }

  /** Zero validity periods take the service's defaults (kept for the store's display only). */
  private withDefaults(settings: ClientSettings): ClientSettings {
    const d = this.deps.serviceConfig().validity;
    const pick = (value: number, fallback: number) => (value === 0 ? Math.min(fallback, d.maxTokenSeconds) : value);
    const validity: ValidityPeriods = {
      applicationTokenSeconds: pick(settings.validity.applicationTokenSeconds, d.applicationTokenSeconds),
      userTokenSeconds: pick(settings.validity.userTokenSeconds, d.userTokenSeconds),
      refreshTokenSeconds: pick(settings.validity.refreshTokenSeconds, d.refreshTokenSeconds),
    };
    return { ...settings, validity };
  }
}

/** The server's registered values win where it answered them (it may adjust a request). */
function withRemote(settings: ClientSettings, remote: RegisteredClient): ClientSettings {
  return {
    ...settings,
    clientName: remote.clientName || settings.clientName,
    callbackUrls: remote.redirectUris,
    grantTypes: remote.grantTypes.length > 0 ? remote.grantTypes : settings.grantTypes,
    scopes: remote.scopes.length > 0 ? remote.scopes : settings.scopes,
  };
}

function settingsOf(client: OAuthClient): ClientSettings {
  const { clientName, callbackUrls, grantTypes, scopes, tokenType, validity, additionalProperties } = client;
  return { clientName, callbackUrls, grantTypes, scopes, tokenType, validity, additionalProperties };
}

function registrationRecord(keyManager: string, remote: RegisteredClient, now: Date): ClientRegistrationRecord {
  return {
    consumerKey: remote.clientId,
    keyManager,
    registrationClientUri: remote.registrationClientUri,
    registrationAccessToken: remote.registrationAccessToken,
    createdAt: now,
    updatedAt: now,
  };
}

function access(r: ClientRegistrationRecord) {
  return { uri: r.registrationClientUri, accessToken: r.registrationAccessToken };
}

function zeroValidity(): ValidityPeriods {
  return { applicationTokenSeconds: 0, userTokenSeconds: 0, refreshTokenSeconds: 0 };
}

function resourcesAreResident(): Error {
  return new FailedPreconditionError("API resources are registered with the resident key manager");
}
