import { z } from "zod";
import { type KeyManagerFeatures, featuresFromSection, keyManagerFeaturesSection } from "./key-manager-features.js";

const url = z.url();

/**
 * One `[[key_manager.external]]` table: an external, standards-based OAuth2 server acting as a
 * key manager beside the resident one.
 */
export const externalKeyManagerSection = z
  .object({
    name: z.string().min(1).max(100),
    type: z.literal("oauth2").default("oauth2"),
    /** The server's issuer: the `iss` of its JWTs, and the base of discovery. */
    issuer: url,
    /** Read the endpoints from RFC 8414 metadata (then OpenID discovery) under the issuer. */
    discovery: z.boolean().default(true),
    /** Explicit endpoints; each one given wins over discovery. */
    endpoints: z
      .object({
        registration: url.optional(),
        token: url.optional(),
        introspection: url.optional(),
        revocation: url.optional(),
        jwks: url.optional(),
      })
      .strict()
      .prefault({}),
    /** This service's own client at the server: authenticates introspection (and revocation of unknown clients' tokens). */
    client_id: z.string().min(1).optional(),
    client_secret: z.string().min(1).optional(),
    /** RFC 7591 initial access token; empty for open registration. */
    initial_access_token: z.string().min(1).optional(),
    /** Regular expression an opaque token of this server matches, whole (anchored either way). */
    token_pattern: z.string().min(1).refine(compiles, { message: "is not a valid regular expression" }).optional(),
    /**
     * JWTs of this server: sent to introspection (revocations anywhere are seen once cached answers
     * end), or verified locally with its JWKS ("jwks": no call per token, but a revocation is seen
     * only by the replica it was made through).
     */
    jwt_validation: z.enum(["introspection", "jwks"]).optional(),
    /** Every HTTP call to the server gives up after this long. */
    timeout_ms: z.coerce.number().int().min(10).max(60_000).default(3000),
    /** Validation results are kept at most this long (and never past the token's expiry); 0: not kept. */
    validation_cache_seconds: z.coerce.number().int().min(0).max(3600).default(60),
    /** WSO2's key manager switches ([key_manager.external.features]). */
    features: keyManagerFeaturesSection,
  })
  .strict()
  .refine(
    (km) =>
      km.features.enable_self_validation_jwt === undefined ||
      km.jwt_validation === undefined ||
      km.features.enable_self_validation_jwt === (km.jwt_validation === "jwks"),
    {
      message: 'features.enable_self_validation_jwt contradicts jwt_validation (true is "jwks", false "introspection")',
    },
  )
  .refine((km) => Boolean(km.client_id) === Boolean(km.client_secret), { message: "client_id and client_secret must be given together" })
  .refine((km) => km.discovery || (km.endpoints.registration && km.endpoints.token && km.endpoints.introspection), {
    message: "without discovery, endpoints.registration, token and introspection are required",
  });

export const externalKeyManagersSection = z
  .array(externalKeyManagerSection)
  .max(20)
  .default([])
  .refine((list) => new Set(list.map((km) => km.name)).size === list.length, { message: "key manager names must be unique" })
  .refine((list) => new Set(list.map((km) => km.issuer.replace(/\/+$/, ""))).size === list.length, { message: "key manager issuers must be unique" });

export type ExternalKeyManagerSection = z.infer<typeof externalKeyManagerSection>;

/** An external key manager as the rest of the service reads it. */
export interface ExternalKeyManagerConfig {
  name: string;
  type: "oauth2";
  issuer: string;
  discovery: boolean;
  endpoints: { registration?: string; token?: string; introspection?: string; revocation?: string; jwks?: string };
  credentials: { clientId: string; clientSecret: string } | undefined;
  initialAccessToken: string | undefined;
  /** Matches a whole token: the configured pattern anchored at both ends. */
  tokenPattern: RegExp | undefined;
  jwtValidation: "jwks" | "introspection";
  timeoutMs: number;
  validationCacheSeconds: number;
  features: KeyManagerFeatures;
}

export function externalFromSection(s: ExternalKeyManagerSection): ExternalKeyManagerConfig {
  // enable_self_validation_jwt alone chooses the validation as jwt_validation would.
  const self = s.features.enable_self_validation_jwt;
  const jwtValidation = self === undefined ? (s.jwt_validation ?? "introspection") : self ? "jwks" : "introspection";
  return {
    name: s.name,
    type: s.type,
    issuer: s.issuer.replace(/\/+$/, ""),
    discovery: s.discovery,
    endpoints: { ...s.endpoints },
    credentials: s.client_id && s.client_secret ? { clientId: s.client_id, clientSecret: s.client_secret } : undefined,
    initialAccessToken: s.initial_access_token,
    tokenPattern: s.token_pattern === undefined ? undefined : wholeToken(s.token_pattern),
    jwtValidation,
    timeoutMs: s.timeout_ms,
    validationCacheSeconds: s.validation_cache_seconds,
    features: featuresFromSection(s.features, jwtValidation === "jwks"),
  };
}

/** `abc` and `^abc$` alike match only the whole token, never a substring of it. */
function wholeToken(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, "u");
}

function compiles(pattern: string): boolean {
  try {
    wholeToken(pattern);
    return true;
  } catch {
    return false;
  }
}
