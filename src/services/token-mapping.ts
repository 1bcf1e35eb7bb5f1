import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AccessTokenInfoSchema, AccessTokenRequest as PbAccessTokenRequest, AccessTokenRequestSchema } from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { AccessTokenInfo, AccessTokenRequest } from "../domain/model/index.js";
import { emptyTokenRequest } from "../oauth/token-request.js";
import { tokenStateToPb, tokenTypeToPb } from "./enums.js";

export function tokenRequestFromPb(r: PbAccessTokenRequest | undefined): AccessTokenRequest {
  if (!r) return emptyTokenRequest();
  const v = new Validator();
  v.nonNegativeInteger("request.validity_period_seconds", r.validityPeriodSeconds, Number.MAX_SAFE_INTEGER);
  v.throwIfInvalid();
  return {
    clientId: r.clientId,
    clientSecret: r.clientSecret,
    grantType: r.grantType,
    scopes: r.scopes,
    callbackUri: r.callbackUri,
    resourceOwnerUsername: r.resourceOwnerUsername,
    resourceOwnerPassword: r.resourceOwnerPassword,
    refreshToken: r.refreshToken,
    validityPeriodSeconds: Number(r.validityPeriodSeconds),
    tokenToRevoke: r.tokenToRevoke,
    requestParameters: r.requestParameters,
  };
}

export function tokenRequestToPb(r: AccessTokenRequest): MessageInitShape<typeof AccessTokenRequestSchema> {
  return { ...r, validityPeriodSeconds: BigInt(r.validityPeriodSeconds) };
}

export function tokenInfoToPb(t: AccessTokenInfo): MessageInitShape<typeof AccessTokenInfoSchema> {
  return {
    accessToken: t.accessToken,
    refreshToken: t.refreshToken,
    tokenId: t.tokenId,
    tokenValid: t.tokenValid,
    isApplicationToken: t.isApplicationToken,
    consumerKey: t.consumerKey,
    scopes: t.scopes,
    tokenState: tokenStateToPb(t.tokenState),
    issuedTimeMs: BigInt(t.issuedAt.getTime()),
    validityPeriodMs: BigInt(t.validityPeriodMs),
    errorCode: t.errorCode,
    endUserName: t.endUserName,
    keyManager: t.keyManager,
    tokenType: tokenTypeToPb(t.tokenType),
  };
}
