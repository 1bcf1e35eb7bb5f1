import { type AccessTokenInfo, isActive, isApplicationToken, type TokenRecord, type TokenState } from "../domain/model/index.js";

/** What GetTokenMetadata and the token listings say of a stored token (never the token itself). */
export function tokenInfo(record: TokenRecord, now: Date, keyManager: string, issued?: { accessToken: string; refreshToken?: string }): AccessTokenInfo {
  const active = isActive(record, now.getTime());
  const state: TokenState = record.revokedAt ? "REVOKED" : active ? "ACTIVE" : "EXPIRED";
  return {
    accessToken: issued?.accessToken ?? "",
    refreshToken: issued?.refreshToken ?? "",
    tokenId: record.id,
    tokenValid: active,
    isApplicationToken: isApplicationToken(record),
    consumerKey: record.consumerKey,
    scopes: record.scopes,
    tokenState: state,
    issuedAt: record.issuedAt,
    validityPeriodMs: record.expiresAt.getTime() - record.issuedAt.getTime(),
    errorCode: "",
    endUserName: record.endUser,
    keyManager,
    tokenType: record.tokenType,
  };
}

/** Introspection of a token nobody issued: inactive, no details. */
export function unknownTokenInfo(keyManager: string): AccessTokenInfo {
  return {
    accessToken: "",
    refreshToken: "",
    tokenId: "",
    tokenValid: false,
    isApplicationToken: false,
    consumerKey: "",
    scopes: [],
    tokenState: "INACTIVE",
    issuedAt: new Date(0),
    validityPeriodMs: 0,
    errorCode: "invalid_token",
    endUserName: "",
    keyManager,
    tokenType: "OPAQUE",
  };
}
