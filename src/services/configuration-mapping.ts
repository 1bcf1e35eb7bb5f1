import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ExternalKeyManagerConfigurationSchema, KeyManagerConfigurationSchema, KeyManagerFeaturesSchema } from "../../gen/keymanager/v1/types_pb.js";
import type { Config } from "../config/config.js";
import type { ExternalKeyManagerConfig } from "../config/external-key-managers.js";
import type { KeyManagerFeatures } from "../config/key-manager-features.js";
import { tokenTypeToPb } from "./enums.js";

const REDACTED = "***";

/** The effective configuration with every secret replaced by "***". */
export function configurationToPb(
  config: Config,
  meta: { sourceFile: string | undefined; loadTime: Date },
): MessageInitShape<typeof KeyManagerConfigurationSchema> {
  return {
    name: config.name,
    type: config.type,
    issuer: config.issuer,
    tokenEndpoint: config.endpoints.token,
    revokeEndpoint: config.endpoints.revoke,
    introspectionEndpoint: config.endpoints.introspect,
    jwksEndpoint: config.endpoints.jwks,
    applicationTokenValiditySeconds: BigInt(config.validity.applicationTokenSeconds),
    userTokenValiditySeconds: BigInt(config.validity.userTokenSeconds),
    refreshTokenValiditySeconds: BigInt(config.validity.refreshTokenSeconds),
    maxTokenValiditySeconds: BigInt(config.validity.maxTokenSeconds),
    tokenType: tokenTypeToPb(config.tokenType),
    grpcHost: config.grpc.host,
    grpcPort: config.grpc.port,
    httpHost: config.http.host,
    httpPort: config.http.port,
    databaseUrl: redactUrl(config.database.url),
    dataDir: config.dataDir,
    tlsEnabled: config.tls !== undefined,
    tlsCertFile: config.tls?.certFile ?? "",
    tlsKeyFile: config.tls ? REDACTED : "",
    encryptionKey: config.encryptionKey ? REDACTED : "generated",
    sourceFile: meta.sourceFile ?? "",
    loadTime: timestampFromDate(meta.loadTime),
    externalKeyManagers: config.externalKeyManagers.map(externalToPb),
    features: featuresToPb(config.features),
  };
}

function externalToPb(km: ExternalKeyManagerConfig): MessageInitShape<typeof ExternalKeyManagerConfigurationSchema> {
  return {
    name: km.name,
    type: km.type,
    issuer: km.issuer,
    discovery: km.discovery,
    registrationEndpoint: km.endpoints.registration ?? "",
    tokenEndpoint: km.endpoints.token ?? "",
    introspectionEndpoint: km.endpoints.introspection ?? "",
    revocationEndpoint: km.endpoints.revocation ?? "",
    jwksEndpoint: km.endpoints.jwks ?? "",
    clientId: km.credentials?.clientId ?? "",
    clientSecret: km.credentials ? REDACTED : "",
    initialAccessToken: km.initialAccessToken ? REDACTED : "",
    tokenPattern: km.tokenPattern?.source ?? "",
    jwtValidation: km.jwtValidation,
    timeoutMs: km.timeoutMs,
    validationCacheSeconds: km.validationCacheSeconds,
    features: featuresToPb(km.features),
  };
}

/** A database URL without its password (and without secrets in query parameters). */
export function redactUrl(url: string): string {
  if (/^sqlite:/i.test(url)) return url;
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const key of [...u.searchParams.keys()]) {
      if (/pass|secret|key|token/i.test(key)) u.searchParams.set(key, REDACTED);
    }
    return u.toString();
  } catch {
    return REDACTED;
  }
}

function featuresToPb(f: KeyManagerFeatures): MessageInitShape<typeof KeyManagerFeaturesSchema> {
  return {
    enableTokenGeneration: f.enableTokenGeneration,
    enableOauthAppCreation: f.enableOAuthAppCreation,
    enableMapOauthConsumerApps: f.enableMapOAuthConsumerApps,
    enableTokenHashing: f.enableTokenHashing,
    enableSelfValidationJwt: f.enableSelfValidationJwt,
    consumerKeyClaim: f.consumerKeyClaim,
    scopesClaim: f.scopesClaim,
    claimMappings: f.claimMappings.map((m) => ({ remote: m.remote, local: m.local })),
    availableGrantTypes: [...f.availableGrantTypes],
  };
}
