/** Domain values of the key manager. Transports map protobuf messages to and from these. */

export const KEY_TYPES = ["PRODUCTION", "SANDBOX"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const KEY_STATES = ["CREATED", "APPROVED", "REJECTED", "COMPLETED"] as const;
export type KeyState = (typeof KEY_STATES)[number];

export const TOKEN_TYPES = ["OPAQUE", "JWT"] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

export type ApplicationMode = "CREATED" | "MAPPED";

export const AUTH_LEVELS = ["APPLICATION", "APPLICATION_USER", "ANY", "NONE"] as const;
export type AuthLevel = (typeof AUTH_LEVELS)[number];

/** Validity periods in seconds. */
export interface ValidityPeriods {
  applicationTokenSeconds: number;
  userTokenSeconds: number;
  refreshTokenSeconds: number;
}

/** The OAuth client settings a store may choose and later change. */
export interface ClientSettings {
  clientName: string;
  callbackUrls: string[];
  grantTypes: string[];
  scopes: string[];
  tokenType: TokenType;
  validity: ValidityPeriods;
  additionalProperties: Record<string, string>;
}

/** An OAuth client held by a key manager. */
export interface OAuthClient extends ClientSettings {
  consumerKey: string;
  consumerSecret: string;
  appOwner: string;
  groupId: string;
  keyManager: string;
  /** A caller of this service (auth/system-clients.ts), never an application's keys. */
  system?: true;
  createdAt: Date;
  updatedAt: Date;
}

/** The link from a store application's key type to an OAuth client. */
export interface ApplicationKeyMapping {
  applicationId: string;
  keyType: KeyType;
  consumerKey: string;
  mode: ApplicationMode;
  keyState: KeyState;
  /** The store application's name and throttling tier, for gateways. */
  applicationName: string;
  applicationTier: string;
  createdAt: Date;
  updatedAt: Date;
}

/** An OAuth client together with the application key it is mapped to, if any. */
export interface OAuthApplication {
  client: OAuthClient;
  mapping: ApplicationKeyMapping | undefined;
}

export interface ApplicationKeyRef {
  applicationId: string;
  keyType: KeyType;
}

export interface CreateApplicationInput {
  applicationId: string;
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

export interface ConsumerCredentials {
  consumerKey: string;
  consumerSecret: string;
}

export const HTTP_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
export type HttpVerb = (typeof HTTP_VERBS)[number];

export interface ApiResource {
  uriTemplate: string;
  httpVerb: HttpVerb;
  authLevel: AuthLevel;
  scopes: string[];
  throttlingTier: string;
}

export interface RegisteredResource {
  apiId: string;
  resources: ApiResource[];
  properties: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ResourceInput {
  apiId: string;
  resources: ApiResource[];
  properties: Record<string, string>;
}
