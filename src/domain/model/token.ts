/** Access tokens: as stored, and as the KeyManager contract speaks of them (WSO2 AccessTokenRequest / AccessTokenInfo). */
import type { TokenFacts, TokenType } from "@keymanager/core";

export { isActive, isApplicationToken, TOKEN_TYPES, type TokenFacts, type TokenType } from "@keymanager/core";

/**
 * An issued access token as stored: what a gateway's decision needs (@keymanager/core), and only
 * hashes of the token and its refresh token.
 */
export interface TokenRecord extends TokenFacts {
  id: string;
  tokenHash: string;
  grantType: string;
  refreshHash: string | undefined;
  refreshExpiresAt: Date | undefined;
  refreshUsedAt: Date | undefined;
  familyId: string;
}

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
