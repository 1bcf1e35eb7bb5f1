/** Access tokens: as stored, and as the KeyManager contract speaks of them (WSO2 AccessTokenRequest / AccessTokenInfo). */

export const TOKEN_TYPES = ["OPAQUE", "JWT"] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

/** An issued access token as stored: only hashes of the token and its refresh token. */
export interface TokenRecord {
  id: string;
  tokenHash: string;
  consumerKey: string;
  /** Resource owner; empty for application tokens. */
  endUser: string;
  scopes: string[];
  tokenType: TokenType;
  grantType: string;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt: Date | undefined;
  refreshHash: string | undefined;
  refreshExpiresAt: Date | undefined;
  refreshUsedAt: Date | undefined;
  familyId: string;
}

export function isApplicationToken(record: Pick<TokenRecord, "endUser">): boolean {
  return record.endUser === "";
}

export function isActive(record: Pick<TokenRecord, "revokedAt" | "expiresAt">, now: Date): boolean {
  return record.revokedAt === undefined && record.expiresAt.getTime() > now.getTime();
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
