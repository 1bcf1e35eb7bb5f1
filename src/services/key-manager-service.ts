import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { Ownership } from "../auth/ownership.js";
import { unknownTokenInfo } from "../keymanager/token-info.js";
import { isRestricted, principalOf } from "../auth/principal.js";
import { callerAddress } from "../auth/call-origin.js";
import type { KeyManagerService } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import type { ConfigStore } from "../config/config-store.js";
import { ConfigError } from "../config/load.js";
import { FailedPreconditionError, UnauthenticatedError } from "../domain/errors.js";
import { requireField, Validator } from "../domain/validator.js";
import { ConsumerSecretRefused, type KeyManager, NO_CLIENT, NO_KEYS } from "../keymanager/key-manager.js";
import type { TokenService } from "../oauth/token-service.js";
import { LIMITS } from "../keymanager/validation.js";
import { applicationToPb, createInputFromPb, mapInputFromPb, patchFromPb } from "./application-mapping.js";
import { configurationToPb } from "./configuration-mapping.js";
import { consumerSecretToPb, newSecretFromPb } from "./consumer-secret-mapping.js";
import { keyTypeFromPb, tokenRoutingToPb } from "./enums.js";
import type { KeyManagerRegistry } from "../keymanager/key-manager-registry.js";
import { buildFromJson, buildFromOAuthApp } from "../oauth/token-request.js";
import { listName, type Paging } from "./page-tokens.js";
import { registeredResourceToPb, resourceInputFromPb, resourcePatchFromPb } from "./resource-mapping.js";
import { tokenInfoToPb, tokenRequestFromPb, tokenRequestToPb } from "./token-mapping.js";

type Impl = ServiceImpl<typeof KeyManagerService>;

/** keymanager.v1.KeyManagerService: maps messages to the KeyManager seam and back. */
export class KeyManagerServiceImpl implements Impl {
  private readonly ownership: Ownership;

  /**
   * `owners` answers who owns a consumer key from this service's own records (the resident key
   * manager reads every client's row), so ownership checks never wait on an external server.
   */
  constructor(
    private readonly keyManager: KeyManager,
    private readonly configStore: ConfigStore,
    private readonly paging: Paging,
    /** The client authentication throttle (TokenService.throttled): MapOAuthApplication checks secrets too. */
    private readonly authentication: Pick<TokenService, "throttled">,
    /** The key managers' routing rules (CanHandleToken). */
    private readonly router: Pick<KeyManagerRegistry, "route" | "named">,
    owners: KeyManager = keyManager,
  ) {
    this.ownership = new Ownership(owners);
  }

  async createApplication(req: Parameters<Impl["createApplication"]>[0], ctx: HandlerContext) {
    const principal = principalOf(ctx);
    const input = this.ownership.ownerFor(principal, createInputFromPb(req));
    await this.ownership.requireApplicationId(principal, input);
    return { application: applicationToPb(await this.keyManager.createApplication(input)) };
  }

  async updateApplication(req: Parameters<Impl["updateApplication"]>[0], ctx: HandlerContext) {
    const { consumerKey, patch } = patchFromPb(req);
    await this.ownership.requireConsumerKey(principalOf(ctx), consumerKey);
    return { application: applicationToPb(await this.keyManager.updateApplication(consumerKey, patch)) };
  }

  async retrieveApplication(req: Parameters<Impl["retrieveApplication"]>[0], ctx: HandlerContext) {
    const v = new Validator();
    const selector = req.selector;
    if (selector.case === "consumerKey") {
      requireField("consumer_key", selector.value);
      const app = await this.keyManager.retrieveApplication(selector.value);
      return { application: applicationToPb(this.ownership.checkApplication(principalOf(ctx), app, NO_CLIENT)) };
    }
    if (selector.case === "applicationKey") {
      const applicationId = selector.value.applicationId;
      v.required("application_key.application_id", applicationId);
      const keyType = keyTypeFromPb(v, "application_key.key_type", selector.value.keyType);
      v.throwIfInvalid();
      const app = await this.keyManager.retrieveApplicationByKey({ applicationId, keyType });
      return { application: applicationToPb(this.ownership.checkApplication(principalOf(ctx), app, NO_KEYS)) };
    }
    v.add("selector", "give consumer_key or application_key");
    v.throwIfInvalid();
    return {};
  }

  async deleteApplication(req: Parameters<Impl["deleteApplication"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    await this.keyManager.deleteApplication(req.consumerKey);
    return {};
  }

  async mapOAuthApplication(req: Parameters<Impl["mapOAuthApplication"]>[0], ctx: HandlerContext) {
    const principal = principalOf(ctx);
    const input = this.ownership.ownerFor(principal, mapInputFromPb(req));
    await this.ownership.requireApplicationId(principal, input);
    const options = { mayUse: (client: { appOwner: string; groupId: string }) => this.ownership.mayUse(principal, client) };
    // A consumer secret is checked here as at the token endpoint: wrong ones pause their source.
    const app = await this.authentication.throttled(
      callerAddress(ctx),
      input.consumerKey,
      () => this.keyManager.mapOAuthApplication(input, options),
      (err) => err instanceof ConsumerSecretRefused,
    );
    return { application: applicationToPb(app) };
  }

  async deleteMappedApplication(req: Parameters<Impl["deleteMappedApplication"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    await this.keyManager.deleteMappedApplication(req.consumerKey);
    return {};
  }

  async regenerateConsumerSecret(req: Parameters<Impl["regenerateConsumerSecret"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    return this.keyManager.regenerateConsumerSecret(req.consumerKey);
  }

  async getNewApplicationAccessToken(req: Parameters<Impl["getNewApplicationAccessToken"]>[0], ctx: HandlerContext) {
    const request = tokenRequestFromPb(req.request);
    // The client secret authenticates the request; a store caller must also own the client.
    if (request.clientId !== "" && !(await this.ownership.maySee(principalOf(ctx), request.clientId))) {
      throw new UnauthenticatedError("client authentication failed");
    }
    return { token: tokenInfoToPb(await this.keyManager.getNewApplicationAccessToken(request, callerAddress(ctx))) };
  }

  async buildAccessTokenRequestFromJson(req: Parameters<Impl["buildAccessTokenRequestFromJson"]>[0]) {
    return { request: tokenRequestToPb(buildFromJson(req.json, req.request ? tokenRequestFromPb(req.request) : undefined)) };
  }

  async buildAccessTokenRequestFromOAuthApp(req: Parameters<Impl["buildAccessTokenRequestFromOAuthApp"]>[0]) {
    const app = req.application;
    const built = buildFromOAuthApp(
      { consumerKey: app?.consumerKey ?? "", consumerSecret: app?.consumerSecret ?? "", callbackUrls: app?.callbackUrls ?? [] },
      req.request ? tokenRequestFromPb(req.request) : undefined,
    );
    return { request: tokenRequestToPb(built) };
  }

  async getTokenMetadata(req: Parameters<Impl["getTokenMetadata"]>[0], ctx: HandlerContext) {
    const info = await this.keyManager.getTokenMetadata(requireField("access_token", req.accessToken));
    // Another's token reads like an unknown one: inactive, nothing about it.
    if (info.consumerKey !== "" && !(await this.ownership.maySee(principalOf(ctx), info.consumerKey))) {
      return { token: tokenInfoToPb(unknownTokenInfo(this.keyManager.name)) };
    }
    return { token: tokenInfoToPb(info) };
  }

  async getActiveTokensByConsumerKey(req: Parameters<Impl["getActiveTokensByConsumerKey"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    const list = listName("GetActiveTokensByConsumerKey", req.consumerKey);
    const page = await this.keyManager.getActiveTokensByConsumerKey(req.consumerKey, this.paging.query(list, req));
    return { tokens: page.items.map(tokenInfoToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async getAccessTokenByConsumerKey(req: Parameters<Impl["getAccessTokenByConsumerKey"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    return { token: tokenInfoToPb(await this.keyManager.getAccessTokenByConsumerKey(req.consumerKey)) };
  }

  async revokeToken(req: Parameters<Impl["revokeToken"]>[0], ctx: HandlerContext) {
    const principal = principalOf(ctx);
    if (isRestricted(principal)) {
      // As RFC 7009: another's or an unknown token is "revoked" without effect or a word.
      const owner = await this.keyManager.tokenClient(requireField("token", req.token));
      if (owner === undefined || !(await this.ownership.maySee(principal, owner))) return {};
    }
    await this.keyManager.revokeToken(requireField("token", req.token), req.tokenTypeHint);
    return {};
  }

  async getKeyManagerConfiguration() {
    return { configuration: this.currentConfiguration() };
  }

  async loadConfiguration() {
    try {
      const { restartRequired } = this.configStore.reload();
      return { configuration: this.currentConfiguration(), restartRequired };
    } catch (err) {
      if (err instanceof ConfigError) {
        throw new FailedPreconditionError(`configuration not reloaded, the previous one stays in force: ${err.problems.join("; ")}`);
      }
      throw err;
    }
  }

  async registerNewResource(req: Parameters<Impl["registerNewResource"]>[0]) {
    return { resource: registeredResourceToPb(await this.keyManager.registerNewResource(resourceInputFromPb(req.resource))) };
  }

  async getResourceByApiId(req: Parameters<Impl["getResourceByApiId"]>[0]) {
    return { resource: registeredResourceToPb(await this.keyManager.getResourceByApiId(requireField("api_id", req.apiId))) };
  }

  async updateRegisteredResource(req: Parameters<Impl["updateRegisteredResource"]>[0]) {
    const { apiId, patch } = resourcePatchFromPb(req);
    return { resource: registeredResourceToPb(await this.keyManager.updateRegisteredResource(apiId, patch)) };
  }

  async deleteRegisteredResourceByApiId(req: Parameters<Impl["deleteRegisteredResourceByApiId"]>[0]) {
    await this.keyManager.deleteRegisteredResourceByApiId(requireField("api_id", req.apiId));
    return {};
  }

  async getUserClaims(req: Parameters<Impl["getUserClaims"]>[0]) {
    return { claims: await this.keyManager.getUserClaims(requireField("username", req.username)) };
  }

  async createConsumerSecret(req: Parameters<Impl["createConsumerSecret"]>[0], ctx: HandlerContext) {
    const input = newSecretFromPb(req);
    await this.ownership.requireConsumerKey(principalOf(ctx), input.consumerKey);
    const created = await this.keyManager.createConsumerSecret(input);
    return { secret: consumerSecretToPb(created.secret), consumerSecret: created.consumerSecret };
  }

  async listConsumerSecrets(req: Parameters<Impl["listConsumerSecrets"]>[0], ctx: HandlerContext) {
    await this.ownership.requireConsumerKey(principalOf(ctx), requireField("consumer_key", req.consumerKey));
    const list = listName("ListConsumerSecrets", req.consumerKey);
    const page = await this.keyManager.listConsumerSecrets(req.consumerKey, this.paging.query(list, req));
    return { secrets: page.items.map(consumerSecretToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async revokeConsumerSecret(req: Parameters<Impl["revokeConsumerSecret"]>[0], ctx: HandlerContext) {
    const v = new Validator();
    v.required("consumer_key", req.consumerKey);
    v.required("secret_id", req.secretId);
    v.throwIfInvalid();
    await this.ownership.requireConsumerKey(principalOf(ctx), req.consumerKey);
    await this.keyManager.revokeConsumerSecret(req.consumerKey, req.secretId);
    return {};
  }

  async updateApplicationOwner(req: Parameters<Impl["updateApplicationOwner"]>[0], ctx: HandlerContext) {
    const principal = principalOf(ctx);
    const v = new Validator();
    v.required("consumer_key", req.consumerKey);
    v.text("app_owner", req.appOwner, LIMITS.name);
    v.throwIfInvalid();
    const consumerKey = req.consumerKey;
    // Checked before and again under the change's lock (the owner may change in between).
    await this.ownership.requireConsumerKey(principal, consumerKey);
    const app = await this.keyManager.updateApplicationOwner(consumerKey, req.appOwner, this.ownership.ownerChange(principal));
    return { application: applicationToPb(app) };
  }

  /** Routing only: the token is not validated, and nothing about it but the route is answered. */
  async canHandleToken(req: Parameters<Impl["canHandleToken"]>[0]) {
    const token = requireField("token", req.token);
    // An unknown name is a mistake to report (as CreateApplication's key_manager), not a "no".
    const asked = req.keyManager === "" ? undefined : this.router.named(req.keyManager);
    const route = this.router.route(token);
    return {
      keyManager: route.keyManager.name,
      type: route.keyManager.type,
      routing: tokenRoutingToPb(route.rule),
      canHandle: asked === undefined || asked === route.keyManager,
    };
  }

  private currentConfiguration() {
    return configurationToPb(this.configStore.current, {
      sourceFile: this.configStore.sourceFile,
      loadTime: this.configStore.loadTime,
    });
  }
}
