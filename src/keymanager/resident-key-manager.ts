import type { Config } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError } from "../domain/errors.js";
import { Validator } from "../domain/validator.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import { acceptsSecret, newConsumerKey, newConsumerSecret } from "./credentials.js";
import { changeOwner } from "./application-owner.js";
import { applicationClient, ConsumerSecrets, type CreatedConsumerSecret, type NewConsumerSecret } from "./consumer-secrets.js";
import { defaultGrantTypes, requireAppCreation, requireAppMapping } from "./features.js";
import { ConsumerSecretRefused, type KeyManager, type MapOptions, NO_CLIENT, NO_KEYS, type Precondition } from "./key-manager.js";
import type { TokenService } from "../oauth/token-service.js";
import { tokenInfo, unknownTokenInfo } from "./token-info.js";
import { userClaimsMap } from "../oauth/user-claims.js";
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
  ResourceInput,
  ResourcePatch,
  ValidityPeriods,
} from "../domain/model/index.js";
import type { ApplicationPatch, CreateApplicationInput, MapApplicationInput } from "./key-manager.js";
import { checkAvailableGrantTypes, checkClientSettings, checkConsumerKey, checkIdentifier, checkResources, LIMITS, checkProperties } from "./validation.js";
import type { Page, PageQuery } from "../domain/paging.js";

/** The built-in key manager: OAuth clients, keys and resources in this service's database. */
export class ResidentKeyManager implements KeyManager {
  readonly type = "resident";
  private readonly secrets: ConsumerSecrets;

  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly clock: Clock,
    private readonly tokens: TokenService,
  ) {
    this.secrets = new ConsumerSecrets(store, clock, () => config().secrets);
  }

  get name(): string {
    return this.config().name;
  }

  async createApplication(input: CreateApplicationInput): Promise<OAuthApplication> {
    this.requireOwnName(input.keyManager);
    const features = this.config().features;
    requireAppCreation(this.name, features);
    const settings = this.withDefaults({
      clientName: input.clientName,
      callbackUrls: input.callbackUrls,
      grantTypes: input.grantTypes.length > 0 ? input.grantTypes : defaultGrantTypes(features),
      scopes: input.scopes,
      tokenType: input.tokenType ?? this.config().tokenType,
      validity: input.validity,
      additionalProperties: input.additionalProperties,
    });
    const v = new Validator();
    checkIdentifier(v, "application_id", input.applicationId);
    checkClientSettings(v, settings, this.config().validity.maxTokenSeconds, input.publicClient === true);
    checkAvailableGrantTypes(v, settings.grantTypes, features.availableGrantTypes, this.name);
    v.optionalText("app_owner", input.appOwner, LIMITS.name);
    v.optionalText("group_id", input.groupId, LIMITS.name);
    v.optionalText("application_name", input.applicationName, LIMITS.name);
    v.optionalText("application_tier", input.applicationTier, LIMITS.tier);
    v.throwIfInvalid();

    const now = this.clock.now();
    const client: OAuthClient = {
      ...settings,
      consumerKey: newConsumerKey(),
      // A public client keeps no secret: it has none to leak.
      consumerSecret: input.publicClient ? "" : newConsumerSecret(),
      ...(input.publicClient ? { publicClient: true as const } : {}),
      appOwner: input.appOwner,
      groupId: input.groupId,
      keyManager: this.name,
      createdAt: now,
      updatedAt: now,
    };
    const mapping = {
      ...newMapping(input, client.consumerKey, "CREATED", now),
      applicationName: input.applicationName || input.clientName,
      applicationTier: input.applicationTier || "Unlimited",
    };
    await this.store.transaction(async (s) => {
      await this.ensureNoKeys(s, input);
      await s.clients.insert(client);
      await s.applicationKeys.insert(mapping);
      s.changed({ kind: "application", consumerKey: client.consumerKey });
    });
    return { client, mapping };
  }

  async updateApplication(consumerKey: string, patch: ApplicationPatch, precondition?: Precondition): Promise<OAuthApplication> {
    return this.store.transaction(async (s) => {
      // Locked: concurrent updates of other fields take turns instead of overwriting this one.
      const current = await applicationClient(s, consumerKey, LOCK);
      precondition?.({ client: current, mapping: await s.applicationKeys.findByConsumerKey(consumerKey) });
      const settings = this.withDefaults({
        ...settingsOf(current),
        ...patch,
        validity: { ...current.validity, ...patch.validity },
      });
      const v = new Validator();
      checkClientSettings(v, settings, this.config().validity.maxTokenSeconds, current.publicClient === true);
      if (patch.grantTypes) checkAvailableGrantTypes(v, settings.grantTypes, this.config().features.availableGrantTypes, this.name);
      v.throwIfInvalid();
      const now = this.clock.now();
      await s.clients.updateSettings(consumerKey, settings, now);
      await s.applicationKeys.touch(consumerKey, now);
      s.changed({ kind: "application", consumerKey });
      return { client: { ...current, ...settings, updatedAt: now }, mapping: await s.applicationKeys.findByConsumerKey(consumerKey) };
    });
  }

  async retrieveApplication(consumerKey: string): Promise<OAuthApplication> {
    const client = await applicationClient(this.store, consumerKey);
    return { client, mapping: await this.store.applicationKeys.findByConsumerKey(consumerKey) };
  }

  async retrieveApplicationByKey(ref: ApplicationKeyRef): Promise<OAuthApplication> {
    const mapping = await this.store.applicationKeys.findByRef(ref);
    if (!mapping) throw new NotFoundError(NO_KEYS);
    return { client: await this.store.clients.get(mapping.consumerKey), mapping };
  }

  async deleteApplication(consumerKey: string): Promise<void> {
    await this.store.transaction(async (s) => {
      await applicationClient(s, consumerKey);
      await s.applicationKeys.deleteByConsumerKey(consumerKey);
      if (!(await s.clients.delete(consumerKey))) throw new NotFoundError(NO_CLIENT);
      s.changed({ kind: "application", consumerKey });
      s.changed({ kind: "tokens", consumerKey });
    });
  }

  async mapOAuthApplication(input: MapApplicationInput, options: MapOptions): Promise<OAuthApplication> {
    this.requireOwnName(input.keyManager);
    requireAppMapping(this.name, this.config().features);
    const v = new Validator();
    checkIdentifier(v, "application_id", input.applicationId);
    checkConsumerKey(v, "consumer_key", input.consumerKey);
    v.text("consumer_secret", input.consumerSecret, LIMITS.secret);
    v.optionalText("app_owner", input.appOwner, LIMITS.name);
    v.optionalText("group_id", input.groupId, LIMITS.name);
    v.throwIfInvalid();

    const now = this.clock.now();
    const mapping = newMapping(input, input.consumerKey, "MAPPED", now);
    return this.store.transaction(async (s) => {
      await this.ensureNoKeys(s, input);
      const existing = await s.clients.find(input.consumerKey);
      // A system client's key is not an application's, and another subscriber's client is not
      // the caller's: both answer exactly as a wrong secret does.
      const added = existing && !existing.system ? await s.consumerSecrets.ofClient(existing.consumerKey) : [];
      const secretOk = acceptsSecret(input.consumerSecret, existing?.consumerSecret ?? "\u0000no-client", added, now);
      if (existing && (existing.system || !options.mayUse(existing) || !secretOk)) throw new ConsumerSecretRefused();
      const client = existing ?? (await this.importClient(s, input, now));
      if (await s.applicationKeys.findByConsumerKey(input.consumerKey)) {
        throw new AlreadyExistsError("the consumer key is already mapped to an application");
      }
      await s.applicationKeys.insert(mapping);
      s.changed({ kind: "application", consumerKey: input.consumerKey });
      return { client, mapping };
    });
  }

  async deleteMappedApplication(consumerKey: string): Promise<void> {
    await this.store.transaction(async (s) => {
      if (!(await s.applicationKeys.deleteByConsumerKey(consumerKey))) {
        throw new NotFoundError("the consumer key is not mapped to an application");
      }
      s.changed({ kind: "application", consumerKey });
    });
  }

  /**
   * A new secret ends what the old one gave: every token of the client is revoked with it (as
   * WSO2's identity server does), on this replica at once and on the others through the change
   * feed. Refresh tokens go with their access tokens. Secrets added with CreateConsumerSecret
   * stay: each is made and revoked on its own, as in WSO2 4.7, where regenerating replaces the
   * one secret it names and leaves the others.
   */
  async regenerateConsumerSecret(consumerKey: string): Promise<ConsumerCredentials> {
    const consumerSecret = newConsumerSecret();
    await this.store.transaction(async (s) => {
      const client = await applicationClient(s, consumerKey, LOCK);
      if (client.publicClient) throw new FailedPreconditionError("a public client (token_endpoint_auth_method none) has no secret");
      const now = this.clock.now();
      await s.clients.updateSecret(consumerKey, consumerSecret, now);
      await s.tokens.revokeClient(consumerKey, now);
      s.changed({ kind: "application", consumerKey });
      s.changed({ kind: "tokens", consumerKey });
    });
    return { consumerKey, consumerSecret };
  }

  createConsumerSecret(input: NewConsumerSecret): Promise<CreatedConsumerSecret> {
    return this.secrets.create(input);
  }

  listConsumerSecrets(consumerKey: string, page: PageQuery): Promise<Page<ConsumerSecretRecord>> {
    return this.secrets.list(consumerKey, page);
  }

  revokeConsumerSecret(consumerKey: string, secretId: string): Promise<void> {
    return this.secrets.revoke(consumerKey, secretId);
  }

  updateApplicationOwner(consumerKey: string, owner: string, precondition?: Precondition): Promise<OAuthApplication> {
    return changeOwner(this.store, this.clock, consumerKey, owner, precondition);
  }

  async getNewApplicationAccessToken(request: AccessTokenRequest, source: string): Promise<AccessTokenInfo> {
    const issued = await this.tokens.issue(request, source);
    return tokenInfo(issued.record, this.clock.now(), this.name, issued);
  }

  async getTokenMetadata(accessToken: string): Promise<AccessTokenInfo> {
    const record = await this.tokens.lookup(accessToken);
    return record ? tokenInfo(record, this.clock.now(), this.name) : unknownTokenInfo(this.name);
  }

  async getActiveTokensByConsumerKey(consumerKey: string, page: PageQuery): Promise<Page<AccessTokenInfo>> {
    const now = this.clock.now();
    const { items, next } = await this.tokens.activeTokens(consumerKey, page);
    return { items: items.map((r) => tokenInfo(r, now, this.name)), next };
  }

  async getAccessTokenByConsumerKey(consumerKey: string): Promise<AccessTokenInfo> {
    return tokenInfo(await this.tokens.latestApplicationToken(consumerKey), this.clock.now(), this.name);
  }

  revokeToken(token: string, tokenTypeHint: string): Promise<void> {
    return this.tokens.revoke(token, { tokenTypeHint });
  }

  tokenClient(token: string): Promise<string | undefined> {
    return this.tokens.clientOf(token);
  }

  async registerNewResource(input: ResourceInput): Promise<RegisteredResource> {
    checkResourceInput(input);
    const now = this.clock.now();
    const resource: RegisteredResource = { ...input, createdAt: now, updatedAt: now };
    await this.store.transaction(async (s) => {
      await s.resources.insert(resource);
      s.changed({ kind: "resources", apiId: input.apiId });
    });
    return resource;
  }

  getResourceByApiId(apiId: string): Promise<RegisteredResource> {
    return this.store.resources.get(apiId);
  }

  async updateRegisteredResource(apiId: string, patch: ResourcePatch): Promise<RegisteredResource> {
    checkResourceInput({ apiId, resources: patch.resources ?? [], properties: patch.properties ?? {} });
    return this.store.transaction(async (s) => {
      // Locked: an update of the properties and one of the resources take turns, both kept.
      const current = await s.resources.get(apiId, LOCK);
      await s.resources.replace(apiId, patch.resources ?? current.resources, patch.properties ?? current.properties, this.clock.now());
      s.changed({ kind: "resources", apiId });
      return s.resources.get(apiId);
    });
  }

  async getUserClaims(username: string): Promise<Record<string, string>> {
    const v = new Validator();
    v.text("username", username, LIMITS.name);
    v.throwIfInvalid();
    return userClaimsMap(await this.store.users.get(username));
  }

  async deleteRegisteredResourceByApiId(apiId: string): Promise<void> {
    await this.store.transaction(async (s) => {
      await s.resources.delete(apiId);
      s.changed({ kind: "resources", apiId });
    });
  }

  /**
   * A key manager named in a request must be this one when it is the only one: an unknown name
   * is a mistake to report, not a request to quietly serve here (the router does the same when
   * external key managers are configured).
   */
  private requireOwnName(name: string | undefined): void {
    if (name && name !== this.name) throw InvalidArgumentError.field("key_manager", "no key manager of this name is configured");
  }

  /** Zero validity periods take the configured defaults. */
  private withDefaults(settings: ClientSettings): ClientSettings {
    const d = this.config().validity;
    // A configured default above the configured maximum gives way to the maximum.
    const pick = (value: number, fallback: number) => (value === 0 ? Math.min(fallback, d.maxTokenSeconds) : value);
    const validity: ValidityPeriods = {
      applicationTokenSeconds: pick(settings.validity.applicationTokenSeconds, d.applicationTokenSeconds),
      userTokenSeconds: pick(settings.validity.userTokenSeconds, d.userTokenSeconds),
      refreshTokenSeconds: pick(settings.validity.refreshTokenSeconds, d.refreshTokenSeconds),
    };
    return { ...settings, validity };
  }

  private async ensureNoKeys(s: Store, ref: ApplicationKeyRef): Promise<void> {
    const existing = await s.applicationKeys.findByRef(ref);
    if (existing) throw new AlreadyExistsError(`the application already has ${ref.keyType} keys`);
  }

  /** A consumer key new to this key manager: record the client with the secret it came with. */
  private async importClient(s: Store, input: MapApplicationInput, now: Date): Promise<OAuthClient> {
    const settings = this.withDefaults({
      clientName: input.clientName || `${input.applicationId}_${input.keyType}`,
      callbackUrls: input.callbackUrls,
      grantTypes: input.grantTypes.length > 0 ? input.grantTypes : defaultGrantTypes(this.config().features),
      scopes: [],
      tokenType: this.config().tokenType,
      validity: { applicationTokenSeconds: 0, userTokenSeconds: 0, refreshTokenSeconds: 0 },
      additionalProperties: {},
    });
    const v = new Validator();
    checkClientSettings(v, settings, this.config().validity.maxTokenSeconds);
    checkAvailableGrantTypes(v, settings.grantTypes, this.config().features.availableGrantTypes, this.name);
    v.throwIfInvalid();
    const client: OAuthClient = {
      ...settings,
      consumerKey: input.consumerKey,
      consumerSecret: input.consumerSecret,
      appOwner: input.appOwner,
      groupId: input.groupId,
      keyManager: this.name,
      createdAt: now,
      updatedAt: now,
    };
    await s.clients.insert(client);
    return client;
  }
}

function settingsOf(client: OAuthClient): ClientSettings {
  const { clientName, callbackUrls, grantTypes, scopes, tokenType, validity, additionalProperties } = client;
  return { clientName, callbackUrls, grantTypes, scopes, tokenType, validity, additionalProperties };
}

function newMapping(ref: ApplicationKeyRef, consumerKey: string, mode: "CREATED" | "MAPPED", now: Date): ApplicationKeyMapping {
  return {
    applicationId: ref.applicationId,
    keyType: ref.keyType,
    consumerKey,
    mode,
    keyState: "COMPLETED",
    applicationName: "",
    applicationTier: "Unlimited",
    createdAt: now,
    updatedAt: now,
  };
}

function checkResourceInput(input: ResourceInput): void {
  const v = new Validator();
  v.text("api_id", input.apiId, LIMITS.name);
  checkResources(v, input.resources);
  checkProperties(v, "properties", input.properties);
  v.throwIfInvalid();
}
