/** Applications and their OAuth clients: what the store registers and a gateway's check reads. */
import type { KeyType, TokenType } from "@keymanager/core";

export { KEY_TYPES, type KeyMapping, type KeyType } from "@keymanager/core";

export const KEY_STATES = ["CREATED", "APPROVED", "REJECTED", "COMPLETED"] as const;
export type KeyState = (typeof KEY_STATES)[number];

export type ApplicationMode = "CREATED" | "MAPPED";

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
  /**
   * A public client (token endpoint auth method "none"): a single-page or native app that can keep
   * no secret. It has none, uses only the authorization code (with PKCE) and refresh token grants.
   */
  publicClient?: true;
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

export interface ConsumerCredentials {
  consumerKey: string;
  consumerSecret: string;
}

/**
 * A consumer secret added to a client beside the one it was created with (WSO2 4.7 multiple
 * consumer secrets). Its value is shown once; only its SHA-256 is kept.
 */
export interface ConsumerSecretRecord {
  secretId: string;
  consumerKey: string;
  /** SHA-256 of the value, hex. */
  secretHash: string;
  /** The value's last characters, to tell secrets apart. */
  hint: string;
  description: string;
  createdAt: Date;
  /** Undefined: accepted until revoked. */
  expiresAt: Date | undefined;
}
