import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { CreateApplicationRequest, MapOAuthApplicationRequest, UpdateApplicationRequest } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import { OAuthApplicationSchema } from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { OAuthApplication, ValidityPeriods } from "../domain/model/index.js";
import type { ApplicationPatch, CreateApplicationInput, MapApplicationInput } from "../keymanager/key-manager.js";
import { updatePaths } from "./update-mask.js";
import { keyStateToPb, keyTypeFromPb, keyTypeToPb, modeToPb, tokenTypeFromPb, tokenTypeToPb } from "./enums.js";

/** Proto requests -> domain inputs and domain applications -> proto messages. */

export function createInputFromPb(req: CreateApplicationRequest): CreateApplicationInput {
  const a = req.application ?? create(OAuthApplicationSchema);
  const v = new Validator();
  const keyType = keyTypeFromPb(v, "key_type", a.keyType);
  const tokenType = tokenTypeFromPb(v, "token_type", a.tokenType);
  const publicClient = a.tokenEndpointAuthMethod === "none";
  if (!["", "none", "client_secret_basic"].includes(a.tokenEndpointAuthMethod)) {
    v.add("token_endpoint_auth_method", 'must be "client_secret_basic" or "none"');
  }
  v.throwIfInvalid();
  return {
    applicationId: a.applicationId,
    ...(publicClient ? { publicClient } : {}),
    keyType,
    clientName: a.clientName,
    callbackUrls: a.callbackUrls,
    grantTypes: a.grantTypes,
    scopes: a.scopes,
    tokenType,
    validity: {
      applicationTokenSeconds: Number(a.applicationTokenValiditySeconds),
      userTokenSeconds: Number(a.userTokenValiditySeconds),
      refreshTokenSeconds: Number(a.refreshTokenValiditySeconds),
    },
    additionalProperties: a.additionalProperties,
    appOwner: a.appOwner,
    groupId: a.groupId,
    applicationName: a.applicationName,
    applicationTier: a.applicationTier,
    keyManager: a.keyManager,
  };
}

export function mapInputFromPb(req: MapOAuthApplicationRequest): MapApplicationInput {
  const a = req.application ?? create(OAuthApplicationSchema);
  const v = new Validator();
  const keyType = keyTypeFromPb(v, "key_type", a.keyType);
  v.throwIfInvalid();
  return {
    applicationId: a.applicationId,
    keyType,
    consumerKey: a.consumerKey,
    consumerSecret: a.consumerSecret,
    clientName: a.clientName,
    callbackUrls: a.callbackUrls,
    grantTypes: a.grantTypes,
    appOwner: a.appOwner,
    groupId: a.groupId,
    keyManager: a.keyManager,
  };
}

/** Paths an update may name, as in the update_mask documentation of the proto. */
const UPDATABLE = [
  "client_name",
  "callback_urls",
  "grant_types",
  "scopes",
  "token_type",
  "application_token_validity_seconds",
  "user_token_validity_seconds",
  "refresh_token_validity_seconds",
  "additional_properties",
] as const;
type Updatable = (typeof UPDATABLE)[number];

/**
 * The fields an UpdateApplication changes: those in update_mask, or without a mask every field
 * that is set. Consumer key and secret are never changed here.
 */
export function patchFromPb(req: UpdateApplicationRequest): { consumerKey: string; patch: ApplicationPatch } {
  const v = new Validator();
  const app = req.application;
  if (!app) {
    v.add("application", "is required");
    v.throwIfInvalid();
  }
  const a = app as NonNullable<typeof app>;
  v.required("application.consumer_key", a.consumerKey);
  const paths = updatePaths(v, req.updateMask, UPDATABLE, (p) => isSet(a, p));
  const tokenType = tokenTypeFromPb(v, "application.token_type", a.tokenType);
  v.throwIfInvalid();

  const patch: ApplicationPatch = {};
  const has = (p: Updatable) => paths.includes(p);
  if (has("client_name")) patch.clientName = a.clientName;
  if (has("callback_urls")) patch.callbackUrls = a.callbackUrls;
  if (has("grant_types")) patch.grantTypes = a.grantTypes;
  if (has("scopes")) patch.scopes = a.scopes;
  if (has("token_type") && tokenType) patch.tokenType = tokenType;
  if (has("additional_properties")) patch.additionalProperties = a.additionalProperties;
  const validity: Partial<ValidityPeriods> = {};
  if (has("application_token_validity_seconds")) validity.applicationTokenSeconds = Number(a.applicationTokenValiditySeconds);
  if (has("user_token_validity_seconds")) validity.userTokenSeconds = Number(a.userTokenValiditySeconds);
  if (has("refresh_token_validity_seconds")) validity.refreshTokenSeconds = Number(a.refreshTokenValiditySeconds);
  if (Object.keys(validity).length > 0) patch.validity = validity;
  return { consumerKey: a.consumerKey, patch };
}

function isSet(a: NonNullable<UpdateApplicationRequest["application"]>, path: Updatable): boolean {
  switch (path) {
    case "client_name":
      return a.clientName !== "";
    case "callback_urls":
      return a.callbackUrls.length > 0;
    case "grant_types":
      return a.grantTypes.length > 0;
    case "scopes":
      return a.scopes.length > 0;
    case "token_type":
      return a.tokenType !== 0;
    case "application_token_validity_seconds":
      return a.applicationTokenValiditySeconds !== 0n;
    case "user_token_validity_seconds":
      return a.userTokenValiditySeconds !== 0n;
    case "refresh_token_validity_seconds":
      return a.refreshTokenValiditySeconds !== 0n;
    case "additional_properties":
      return Object.keys(a.additionalProperties).length > 0;
  }
}

export function applicationToPb({ client, mapping }: OAuthApplication): MessageInitShape<typeof OAuthApplicationSchema> {
  return {
    consumerKey: client.consumerKey,
    consumerSecret: client.consumerSecret,
    tokenEndpointAuthMethod: client.publicClient ? "none" : "client_secret_basic",
    clientName: client.clientName,
    callbackUrls: client.callbackUrls,
    grantTypes: client.grantTypes,
    scopes: client.scopes,
    tokenType: tokenTypeToPb(client.tokenType),
    applicationTokenValiditySeconds: BigInt(client.validity.applicationTokenSeconds),
    userTokenValiditySeconds: BigInt(client.validity.userTokenSeconds),
    refreshTokenValiditySeconds: BigInt(client.validity.refreshTokenSeconds),
    additionalProperties: client.additionalProperties,
    appOwner: client.appOwner,
    groupId: client.groupId,
    applicationId: mapping?.applicationId ?? "",
    keyType: mapping ? keyTypeToPb(mapping.keyType) : 0,
    mode: mapping ? modeToPb(mapping.mode) : 0,
    keyState: mapping ? keyStateToPb(mapping.keyState) : 0,
    keyManager: client.keyManager,
    applicationName: mapping ? mapping.applicationName || client.clientName : "",
    applicationTier: mapping?.applicationTier ?? "",
    createTime: timestampFromDate(client.createdAt),
    updateTime: timestampFromDate(client.updatedAt),
  };
}
