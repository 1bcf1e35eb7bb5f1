import type {
  AccessTokenInfo,
  AccessTokenRequest,
  ApplicationKeyRef,
  ClientSettings,
  ConsumerCredentials,
  ConsumerSecretRecord,
  KeyType,
  OAuthApplication,
  RegisteredResource,
  ResourceInput,
  ResourcePatch,
  TokenType,
  ValidityPeriods,
} from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import type { CreatedConsumerSecret, NewConsumerSecret } from "./consumer-secrets.js";
import { InvalidArgumentError } from "../domain/errors.js";

export interface CreateApplicationInput {
  applicationId: string;
  /** A public client (token endpoint auth method "none"): no secret; the authorization code grant with PKCE. */
  publicClient?: boolean;
  keyType: KeyType;
  clientName: string;
  callbackUrls: string[];
  grantTypes: string[];
  scopes: string[];
  tokenType: TokenType | undefined;
  /** Seconds; 0 takes the configured default. */
  validity: ValidityPeriods;
  additionalProperties: Record<string, string>;
  appOwner: string;
  groupId: string;
  applicationName: string;
  applicationTier: string;
  /** The configured key manager to register the client at; empty or absent: the resident one. */
  keyManager?: string;
}

/** Only the fields present change; a zero validity period resets it to the configured default. */
export type ApplicationPatch = Partial<Omit<ClientSettings, "validity">> & { validity?: Partial<ValidityPeriods> };

export interface MapApplicationInput {
  applicationId: string;
  keyType: KeyType;
  consumerKey: string;
  consumerSecret: string;
  clientName: string;
  callbackUrls: string[];
  grantTypes: string[];
  appOwner: string;
  groupId: string;
  /** The configured key manager that issued the consumer key; empty or absent: the resident one. */
  keyManager?: string;
}

/** Who maps: whether an existing client is the caller's to map (its own subscriber's or group's; every client for admins). */
export interface MapOptions {
  mayUse(client: { appOwner: string; groupId: string }): boolean;
}

/**
 * MapOAuthApplication's one refusal for a consumer key that exists and may not be mapped by this
 * caller: a wrong secret, another subscriber's client (whatever the secret), a system client.
 * One answer for all, so the call tells nothing of others' clients; counted as a failed client
 * authentication by the throttle (oauth/authentication-throttle.ts).
 */
export class ConsumerSecretRefused extends InvalidArgumentError {
  constructor() {
    super([{ field: "consumer_secret", description: "does not match the consumer key's secret" }]);
  }
}

/** Throws (a domain error) when the application is not in the state a change expects. */
export type Precondition = (current: OAuthApplication) => void;

/** NOT_FOUND messages every key manager uses, so a hidden application answers like a missing one. */
export const NO_CLIENT = "no OAuth application with this consumer key";
export const NO_KEYS = "the application has no keys of this type";

/**
 * The seam behind the KeyManager services: the WSO2 KeyManager extension point in TypeScript.
 * The resident implementation keeps everything in this service's database; others drive an
 * external OAuth2 server. Services depend on this interface, never on storage.
 *
 * Inputs arrive validated in shape (types, enums); implementations check meaning (existence,
 * uniqueness, secrets) and raise the domain errors of domain/errors.ts.
 */
export interface KeyManager {
  /** The configured name, recorded on every client this key manager holds. */
  readonly name: string;
  /** "resident" or the external type. */
  readonly type: string;

  createApplication(input: CreateApplicationInput): Promise<OAuthApplication>;
  /**
   * `precondition` sees the application as it is just before the change (for the resident key
   * manager, under the lock the change holds) and throws to refuse it: compare-and-set.
   */
  updateApplication(consumerKey: string, patch: ApplicationPatch, precondition?: Precondition): Promise<OAuthApplication>;
  retrieveApplication(consumerKey: string): Promise<OAuthApplication>;
  retrieveApplicationByKey(ref: ApplicationKeyRef): Promise<OAuthApplication>;
  deleteApplication(consumerKey: string): Promise<void>;
  /** `options.mayUse` decides whether an existing client is the caller's; others' answer ConsumerSecretRefused. */
  mapOAuthApplication(input: MapApplicationInput, options: MapOptions): Promise<OAuthApplication>;
  deleteMappedApplication(consumerKey: string): Promise<void>;
  regenerateConsumerSecret(consumerKey: string): Promise<ConsumerCredentials>;
  /** Adds a consumer secret to a client (WSO2 4.7 multiple secrets); its value is answered once. */
  createConsumerSecret(input: NewConsumerSecret): Promise<CreatedConsumerSecret>;
  /** A page of a client's added secrets, oldest first, without their values. */
  listConsumerSecrets(consumerKey: string, page: PageQuery): Promise<Page<ConsumerSecretRecord>>;
  revokeConsumerSecret(consumerKey: string, secretId: string): Promise<void>;
  /** Gives the client to another owner; `precondition` as in updateApplication. */
  updateApplicationOwner(consumerKey: string, owner: string, precondition?: Precondition): Promise<OAuthApplication>;

  /** `source`: the caller's network address, for the authentication throttle (oauth/authentication-throttle.ts). */
  getNewApplicationAccessToken(request: AccessTokenRequest, source: string): Promise<AccessTokenInfo>;
  getTokenMetadata(accessToken: string): Promise<AccessTokenInfo>;
  /** A page of the active tokens of a client, newest first. */
  getActiveTokensByConsumerKey(consumerKey: string, page: PageQuery): Promise<Page<AccessTokenInfo>>;
  getAccessTokenByConsumerKey(consumerKey: string): Promise<AccessTokenInfo>;
  revokeToken(token: string, tokenTypeHint: string): Promise<void>;
  /** The consumer key an access or refresh token was issued to; undefined when unknown. */
  tokenClient(token: string): Promise<string | undefined>;

  registerNewResource(input: ResourceInput): Promise<RegisteredResource>;
  getResourceByApiId(apiId: string): Promise<RegisteredResource>;
  updateRegisteredResource(apiId: string, patch: ResourcePatch): Promise<RegisteredResource>;
  deleteRegisteredResourceByApiId(apiId: string): Promise<void>;

  /** WSO2's getUserClaims: a user's claims by OpenID Connect name (sub, email, name, roles). */
  getUserClaims(username: string): Promise<Record<string, string>>;
}
