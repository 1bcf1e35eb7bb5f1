import type { ServiceImpl } from "@connectrpc/connect";
import type { KeyManagerService } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import type { ConfigStore } from "../config/config-store.js";
import { ConfigError } from "../config/load.js";
import { FailedPreconditionError } from "../domain/errors.js";
import { requireField, Validator } from "../domain/validator.js";
import type { KeyManager } from "../keymanager/key-manager.js";
import { applicationToPb, createInputFromPb, mapInputFromPb, patchFromPb } from "./application-mapping.js";
import { configurationToPb } from "./configuration-mapping.js";
import { keyTypeFromPb } from "./enums.js";
import { buildFromJson, buildFromOAuthApp } from "../oauth/token-request.js";
import { registeredResourceToPb, resourceInputFromPb } from "./resource-mapping.js";
import { tokenInfoToPb, tokenRequestFromPb, tokenRequestToPb } from "./token-mapping.js";

type Impl = ServiceImpl<typeof KeyManagerService>;

/** keymanager.v1.KeyManagerService: maps messages to the KeyManager seam and back. */
export class KeyManagerServiceImpl implements Impl {
  constructor(
    private readonly keyManager: KeyManager,
    private readonly configStore: ConfigStore,
  ) {}

  async createApplication(req: Parameters<Impl["createApplication"]>[0]) {
    const app = await this.keyManager.createApplication(createInputFromPb(req));
    return { application: applicationToPb(app) };
  }

  async updateApplication(req: Parameters<Impl["updateApplication"]>[0]) {
    const { consumerKey, patch } = patchFromPb(req);
    return { application: applicationToPb(await this.keyManager.updateApplication(consumerKey, patch)) };
  }

  async retrieveApplication(req: Parameters<Impl["retrieveApplication"]>[0]) {
    const v = new Validator();
    const selector = req.selector;
    if (selector.case === "consumerKey") {
      requireField("consumer_key", selector.value);
      return { application: applicationToPb(await this.keyManager.retrieveApplication(selector.value)) };
    }
    if (selector.case === "applicationKey") {
      const applicationId = selector.value.applicationId;
      v.required("application_key.application_id", applicationId);
      const keyType = keyTypeFromPb(v, "application_key.key_type", selector.value.keyType);
      v.throwIfInvalid();
      return { application: applicationToPb(await this.keyManager.retrieveApplicationByKey({ applicationId, keyType })) };
    }
    v.add("selector", "give consumer_key or application_key");
    v.throwIfInvalid();
    return {};
  }

  async deleteApplication(req: Parameters<Impl["deleteApplication"]>[0]) {
    await this.keyManager.deleteApplication(requireField("consumer_key", req.consumerKey));
    return {};
  }

  async mapOAuthApplication(req: Parameters<Impl["mapOAuthApplication"]>[0]) {
    return { application: applicationToPb(await this.keyManager.mapOAuthApplication(mapInputFromPb(req))) };
  }

  async deleteMappedApplication(req: Parameters<Impl["deleteMappedApplication"]>[0]) {
    await this.keyManager.deleteMappedApplication(requireField("consumer_key", req.consumerKey));
    return {};
  }

  async regenerateConsumerSecret(req: Parameters<Impl["regenerateConsumerSecret"]>[0]) {
    return this.keyManager.regenerateConsumerSecret(requireField("consumer_key", req.consumerKey));
  }

  async getNewApplicationAccessToken(req: Parameters<Impl["getNewApplicationAccessToken"]>[0]) {
    return { token: tokenInfoToPb(await this.keyManager.getNewApplicationAccessToken(tokenRequestFromPb(req.request))) };
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

  async getTokenMetadata(req: Parameters<Impl["getTokenMetadata"]>[0]) {
    return { info: tokenInfoToPb(await this.keyManager.getTokenMetadata(requireField("access_token", req.accessToken))) };
  }

  async getActiveTokensByConsumerKey(req: Parameters<Impl["getActiveTokensByConsumerKey"]>[0]) {
    const tokens = await this.keyManager.getActiveTokensByConsumerKey(requireField("consumer_key", req.consumerKey));
    return { tokens: tokens.map(tokenInfoToPb) };
  }

  async getAccessTokenByConsumerKey(req: Parameters<Impl["getAccessTokenByConsumerKey"]>[0]) {
    return { token: tokenInfoToPb(await this.keyManager.getAccessTokenByConsumerKey(requireField("consumer_key", req.consumerKey))) };
  }

  async revokeToken(req: Parameters<Impl["revokeToken"]>[0]) {
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
    return { resource: registeredResourceToPb(await this.keyManager.registerNewResource(resourceInputFromPb(req))) };
  }

  async getResourceByApiId(req: Parameters<Impl["getResourceByApiId"]>[0]) {
    return { resource: registeredResourceToPb(await this.keyManager.getResourceByApiId(requireField("api_id", req.apiId))) };
  }

  async updateRegisteredResource(req: Parameters<Impl["updateRegisteredResource"]>[0]) {
    return { resource: registeredResourceToPb(await this.keyManager.updateRegisteredResource(resourceInputFromPb(req))) };
  }

  async deleteRegisteredResourceByApiId(req: Parameters<Impl["deleteRegisteredResourceByApiId"]>[0]) {
    await this.keyManager.deleteRegisteredResourceByApiId(requireField("api_id", req.apiId));
    return {};
  }

  private currentConfiguration() {
    return configurationToPb(this.configStore.current, {
      sourceFile: this.configStore.sourceFile,
      loadTime: this.configStore.loadTime,
    });
  }
}
