import {
  ApplicationMode as PbApplicationMode,
  AuthLevel as PbAuthLevel,
  KeyState as PbKeyState,
  KeyType as PbKeyType,
  SubscriptionState as PbSubscriptionState,
  TokenState as PbTokenState,
  TokenType as PbTokenType,
} from "../../gen/keymanager/v1/types_pb.js";
import { TokenRouting as PbTokenRouting } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import type { Validator } from "../domain/validator.js";
import type { TokenRoute } from "../keymanager/key-manager-registry.js";
import type { ApplicationMode, AuthLevel, KeyState, KeyType, SubscriptionState, TokenState, TokenType } from "../domain/model/index.js";

/** Protobuf enums <-> domain string unions. Unknown and UNSPECIFIED values are violations. */

export function keyTypeFromPb(v: Validator, field: string, value: PbKeyType): KeyType {
  if (value === PbKeyType.PRODUCTION) return "PRODUCTION";
  if (value === PbKeyType.SANDBOX) return "SANDBOX";
  v.add(field, "must be KEY_TYPE_PRODUCTION or KEY_TYPE_SANDBOX");
  return "PRODUCTION";
}

export function keyTypeToPb(value: KeyType): PbKeyType {
  return value === "PRODUCTION" ? PbKeyType.PRODUCTION : PbKeyType.SANDBOX;
}

/** UNSPECIFIED means "the configured default" (undefined). */
export function tokenTypeFromPb(v: Validator, field: string, value: PbTokenType): TokenType | undefined {
  if (value === PbTokenType.UNSPECIFIED) return undefined;
  if (value === PbTokenType.OPAQUE) return "OPAQUE";
  if (value === PbTokenType.JWT) return "JWT";
  v.add(field, "must be TOKEN_TYPE_OPAQUE or TOKEN_TYPE_JWT");
  return undefined;
}

export function tokenTypeToPb(value: TokenType): PbTokenType {
  return value === "JWT" ? PbTokenType.JWT : PbTokenType.OPAQUE;
}

const KEY_STATES: Record<KeyState, PbKeyState> = {
  CREATED: PbKeyState.CREATED,
  APPROVED: PbKeyState.APPROVED,
  REJECTED: PbKeyState.REJECTED,
  COMPLETED: PbKeyState.COMPLETED,
};

export function keyStateToPb(value: KeyState): PbKeyState {
  return KEY_STATES[value];
}

export function modeToPb(value: ApplicationMode): PbApplicationMode {
  return value === "MAPPED" ? PbApplicationMode.MAPPED : PbApplicationMode.CREATED;
}

const AUTH_LEVELS: Record<AuthLevel, PbAuthLevel> = {
  APPLICATION: PbAuthLevel.APPLICATION,
  APPLICATION_USER: PbAuthLevel.APPLICATION_USER,
  ANY: PbAuthLevel.ANY,
  NONE: PbAuthLevel.NONE,
};

export function authLevelToPb(value: AuthLevel): PbAuthLevel {
  return AUTH_LEVELS[value];
}

export function authLevelFromPb(v: Validator, field: string, value: PbAuthLevel): AuthLevel {
  const found = (Object.keys(AUTH_LEVELS) as AuthLevel[]).find((k) => AUTH_LEVELS[k] === value);
  if (!found) v.add(field, "must be AUTH_LEVEL_APPLICATION, AUTH_LEVEL_APPLICATION_USER, AUTH_LEVEL_ANY or AUTH_LEVEL_NONE");
  return found ?? "ANY";
}

const TOKEN_STATES: Record<TokenState, PbTokenState> = {
  ACTIVE: PbTokenState.ACTIVE,
  BLOCKED: PbTokenState.BLOCKED,
  REVOKED: PbTokenState.REVOKED,
  INACTIVE: PbTokenState.INACTIVE,
  EXPIRED: PbTokenState.EXPIRED,
};

export function tokenStateToPb(value: TokenState): PbTokenState {
  return TOKEN_STATES[value];
}

const SUBSCRIPTION_STATES: Record<SubscriptionState, PbSubscriptionState> = {
  UNBLOCKED: PbSubscriptionState.UNBLOCKED,
  BLOCKED: PbSubscriptionState.BLOCKED,
  PROD_ONLY_BLOCKED: PbSubscriptionState.PROD_ONLY_BLOCKED,
  ON_HOLD: PbSubscriptionState.ON_HOLD,
  REJECTED: PbSubscriptionState.REJECTED,
  TIER_UPDATE_PENDING: PbSubscriptionState.TIER_UPDATE_PENDING,
};

export function subscriptionStateToPb(value: SubscriptionState): PbSubscriptionState {
  return SUBSCRIPTION_STATES[value];
}

/** UNSPECIFIED means "unchanged" or "the default" (undefined). */
export function subscriptionStateFromPb(v: Validator, field: string, value: PbSubscriptionState): SubscriptionState | undefined {
  if (value === PbSubscriptionState.UNSPECIFIED) return undefined;
  const found = (Object.keys(SUBSCRIPTION_STATES) as SubscriptionState[]).find((k) => SUBSCRIPTION_STATES[k] === value);
  if (!found) v.add(field, "is not a subscription state");
  return found;
}

/** UNSPECIFIED means "the registered resource's level" (undefined); unknown values are violations. */
export function optionalAuthLevelFromPb(v: Validator, field: string, value: PbAuthLevel): AuthLevel | undefined {
  return value === PbAuthLevel.UNSPECIFIED ? undefined : authLevelFromPb(v, field, value);
}

const TOKEN_ROUTINGS: Record<TokenRoute["rule"], PbTokenRouting> = {
  issuer: PbTokenRouting.ISSUER,
  token_pattern: PbTokenRouting.TOKEN_PATTERN,
  default: PbTokenRouting.DEFAULT,
};

export function tokenRoutingToPb(value: TokenRoute["rule"]): PbTokenRouting {
  return TOKEN_ROUTINGS[value];
}
