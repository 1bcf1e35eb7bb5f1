import type { KeyManager, MapOptions, Precondition } from "./key-manager.js";
import type { KeyManagerRegistry } from "./key-manager-registry.js";
import type {
  AccessTokenInfo,
  AccessTokenRequest,
  ApplicationKeyRef,
  ConsumerCredentials,
  ConsumerSecretRecord,
  OAuthApplication,
  RegisteredResource,
  ResourceInput,
  ResourcePatch,
} from "../domain/model/index.js";
import type { ApplicationPatch, CreateApplicationInput, MapApplicationInput } from "./key-manager.js";
import type { Page, PageQuery } from "../domain/paging.js";
import type { CreatedConsumerSecret, NewConsumerSecret } from "./consumer-secrets.js";

/**
 * The KeyManager the services see (external key managers may come with any reload): each call
 * goes to the key manager that holds its client (by consumer key) or issued its token; new
 * clients go to the one the request names. API resources are always the resident key manager's: the gateway check
 * reads them here, whoever issued the token.
 */
export class RoutingKeyManager implements KeyManager {
  constructor(private readonly registry: KeyManagerRegistry) {}

  get name(): string {
    return this.registry.resident.name;
  }

  get type(): string {
    return this.registry.resident.type;
  }

  createApplication(input: CreateApplicationInput): Promise<OAuthApplication> {
    return this.registry.named(input.keyManager ?? "").createApplication(input);
  }

  async updateApplication(consumerKey: string, patch: ApplicationPatch, precondition?: Precondition): Promise<OAuthApplication> {
    return (await this.registry.forConsumerKey(consumerKey)).updateApplication(consumerKey, patch, precondition);
  }

  async retrieveApplication(consumerKey: string): Promise<OAuthApplication> {
    return (await this.registry.forConsumerKey(consumerKey)).retrieveApplication(consumerKey);
  }

  async retrieveApplicationByKey(ref: ApplicationKeyRef): Promise<OAuthApplication> {
    return (await this.registry.forApplicationKey(ref)).retrieveApplicationByKey(ref);
  }

  async deleteApplication(consumerKey: string): Promise<void> {
    return (await this.registry.forConsumerKey(consumerKey)).deleteApplication(consumerKey);
  }

  mapOAuthApplication(input: MapApplicationInput, options: MapOptions): Promise<OAuthApplication> {
    return this.registry.named(input.keyManager ?? "").mapOAuthApplication(input, options);
  }

  async deleteMappedApplication(consumerKey: string): Promise<void> {
    return (await this.registry.forConsumerKey(consumerKey)).deleteMappedApplication(consumerKey);
  }

  async regenerateConsumerSecret(consumerKey: string): Promise<ConsumerCredentials> {
    return (await this.registry.forConsumerKey(consumerKey)).regenerateConsumerSecret(consumerKey);
  }

  async createConsumerSecret(input: NewConsumerSecret): Promise<CreatedConsumerSecret> {
    return (await this.registry.forConsumerKey(input.consumerKey)).createConsumerSecret(input);
  }

  async listConsumerSecrets(consumerKey: string, page: PageQuery): Promise<Page<ConsumerSecretRecord>> {
    return (await this.registry.forConsumerKey(consumerKey)).listConsumerSecrets(consumerKey, page);
  }

  async revokeConsumerSecret(consumerKey: string, secretId: string): Promise<void> {
    return (await this.registry.forConsumerKey(consumerKey)).revokeConsumerSecret(consumerKey, secretId);
  }

  async updateApplicationOwner(consumerKey: string, owner: string, precondition?: Precondition): Promise<OAuthApplication> {
    return (await this.registry.forConsumerKey(consumerKey)).updateApplicationOwner(consumerKey, owner, precondition);
  }

  async getNewApplicationAccessToken(request: AccessTokenRequest, source: string): Promise<AccessTokenInfo> {
    return (await this.registry.forConsumerKey(request.clientId)).getNewApplicationAccessToken(request, source);
  }

  getTokenMetadata(accessToken: string): Promise<AccessTokenInfo> {
    return this.registry.forToken(accessToken).getTokenMetadata(accessToken);
  }

  async getActiveTokensByConsumerKey(consumerKey: string, page: PageQuery): Promise<Page<AccessTokenInfo>> {
    return (await this.registry.forConsumerKey(consumerKey)).getActiveTokensByConsumerKey(consumerKey, page);
  }

  async getAccessTokenByConsumerKey(consumerKey: string): Promise<AccessTokenInfo> {
    return (await this.registry.forConsumerKey(consumerKey)).getAccessTokenByConsumerKey(consumerKey);
  }

  revokeToken(token: string, tokenTypeHint: string): Promise<void> {
    return this.registry.forToken(token).revokeToken(token, tokenTypeHint);
  }

  tokenClient(token: string): Promise<string | undefined> {
    return this.registry.forToken(token).tokenClient(token);
  }

  registerNewResource(input: ResourceInput): Promise<RegisteredResource> {
    return this.registry.resident.registerNewResource(input);
  }

  getResourceByApiId(apiId: string): Promise<RegisteredResource> {
    return this.registry.resident.getResourceByApiId(apiId);
  }

  updateRegisteredResource(apiId: string, patch: ResourcePatch): Promise<RegisteredResource> {
    return this.registry.resident.updateRegisteredResource(apiId, patch);
  }

  deleteRegisteredResourceByApiId(apiId: string): Promise<void> {
    return this.registry.resident.deleteRegisteredResourceByApiId(apiId);
  }

  /** Users (UserService) are the resident key manager's. */
  getUserClaims(username: string): Promise<Record<string, string>> {
    return this.registry.resident.getUserClaims(username);
  }
}
