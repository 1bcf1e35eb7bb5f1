import type { Decision, KeyType, TokenType, ValidationStatus } from "@keymanager/core";
import { KeyType as PbKeyType, TokenType as PbTokenType, type ValidateTokenResponse } from "@keymanager/client";

/**
 * The answer to a gateway's question, field for field ValidateToken's (ValidateTokenResponse),
 * whether decided in process or by the server: enums by name ("" for none), times in epoch
 * milliseconds as numbers.
 */
export interface GatewayAnswer {
  authorized: boolean;
  /** 0 when authorized, else a 9009xx code (900901 invalid credentials, ...). */
  statusCode: number;
  /** The code's name, for example "API_AUTH_INVALID_CREDENTIALS". */
  statusName: string;
  /** Which check failed, for people; never a token or secret. Empty when authorized. */
  statusDescription: string;
  consumerKey: string;
  applicationId: string;
  applicationName: string;
  applicationTier: string;
  subscriber: string;
  subscriptionTier: string;
  keyType: KeyType | "";
  endUserName: string;
  scopes: string[];
  issuedTimeMs: number;
  validityPeriodMs: number;
  apiName: string;
  apiPublisher: string;
  apiTier: string;
  keyManager: string;
  tokenType: TokenType | "";
  isApplicationToken: boolean;
  resourceTier: string;
  /** The URI template the call was decided on. */
  matchedResource: string;
}

const KEY_TYPES: Record<number, KeyType | ""> = { [PbKeyType.PRODUCTION]: "PRODUCTION", [PbKeyType.SANDBOX]: "SANDBOX" };
const TOKEN_TYPES: Record<number, TokenType | ""> = { [PbTokenType.OPAQUE]: "OPAQUE", [PbTokenType.JWT]: "JWT" };

/** The server's answer (ValidateToken or one of a ValidateTokens stream). */
export function answerFromResponse(r: ValidateTokenResponse): GatewayAnswer {
  return {
    authorized: r.authorized,
    statusCode: r.statusCode,
    statusName: r.statusName,
    statusDescription: r.statusDescription,
    consumerKey: r.consumerKey,
    applicationId: r.applicationId,
    applicationName: r.applicationName,
    applicationTier: r.applicationTier,
    subscriber: r.subscriber,
    subscriptionTier: r.subscriptionTier,
    keyType: KEY_TYPES[r.keyType] ?? "",
    endUserName: r.endUserName,
    scopes: [...r.scopes],
    issuedTimeMs: Number(r.issuedTimeMs),
    validityPeriodMs: Number(r.validityPeriodMs),
    apiName: r.apiName,
    apiPublisher: r.apiPublisher,
    apiTier: r.apiTier,
    keyManager: r.keyManager,
    tokenType: TOKEN_TYPES[r.tokenType] ?? "",
    isApplicationToken: r.isApplicationToken,
    resourceTier: r.resourceTier,
    matchedResource: r.matchedResource,
  };
}

/** A decision of @keymanager/core's `decide`, as the server maps it to its answer. */
export function answerFromDecision(d: Decision): GatewayAnswer {
  const t = d.token;
  return {
    authorized: d.authorized,
    statusCode: d.status.code,
    statusName: d.status.name,
    statusDescription: d.description,
    consumerKey: t?.consumerKey ?? "",
    applicationId: d.keyMapping?.applicationId ?? "",
    applicationName: d.keyMapping?.applicationName ?? "",
    applicationTier: d.keyMapping?.applicationTier ?? "",
    subscriber: d.keyMapping?.subscriber ?? "",
    subscriptionTier: d.subscription?.tier ?? "",
    keyType: d.keyMapping?.keyType ?? "",
    endUserName: t?.endUser ?? "",
    scopes: t ? [...t.scopes] : [],
    issuedTimeMs: t ? t.issuedAt.getTime() : 0,
    validityPeriodMs: t ? t.expiresAt.getTime() - t.issuedAt.getTime() : 0,
    apiName: d.api?.name ?? "",
    apiPublisher: d.api?.publisher ?? "",
    apiTier: d.api?.apiTier ?? "",
    keyManager: d.keyMapping?.keyManager ?? "",
    tokenType: t?.tokenType ?? "",
    isApplicationToken: t ? t.endUser === "" : false,
    resourceTier: d.resource?.throttlingTier ?? "",
    matchedResource: d.resource?.uriTemplate ?? "",
  };
}

/** An answer the library makes itself, when no one could decide: the code and why. */
export function answerWithStatus(status: ValidationStatus, description: string): GatewayAnswer {
  return answerFromDecision({ status, authorized: false, description });
}
