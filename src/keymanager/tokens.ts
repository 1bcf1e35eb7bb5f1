/** Token values the KeyManager contract speaks of (WSO2 AccessTokenRequest / AccessTokenInfo). */
import type { TokenType } from "./types.js";

export interface AccessTokenRequest {
  clientId: string;
  clientSecret: string;
  grantType: string;
  scopes: string[];
  callbackUri: string;
  resourceOwnerUsername: string;
  resourceOwnerPassword: string;
  refreshToken: string;
  /** Seconds; 0 means the client's default. */
  validityPeriodSeconds: number;
  tokenToRevoke: string;
  requestParameters: Record<string, string>;
}

export type TokenState = "ACTIVE" | "BLOCKED" | "REVOKED" | "INACTIVE" | "EXPIRED";

export interface AccessTokenInfo {
  /** Set only when the token is issued. */
  accessToken: string;
  refreshToken: string;
  tokenId: string;
  tokenValid: boolean;
  isApplicationToken: boolean;
  consumerKey: string;
  scopes: string[];
  tokenState: TokenState;
  issuedAt: Date;
  validityPeriodMs: number;
  errorCode: string;
  endUserName: string;
  keyManager: string;
  tokenType: TokenType;
}
