import type { TokenType } from "../keymanager/types.js";

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

export interface User {
  username: string;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
}
