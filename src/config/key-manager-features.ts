import { z } from "zod";
import { KNOWN_GRANT_TYPES } from "../keymanager/grant-types.js";

/** A JWT claim name: printable ASCII without spaces, as JSON object keys in tokens are. */
const claimName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[\x21-\x7e]+$/, { message: "must be a claim name (printable ASCII, no spaces)" });

/**
 * The switches WSO2 shows per key manager (its KeyManagerConfiguration), as a `features` table of
 * `[key_manager]` (the resident key manager) or of each `[[key_manager.external]]`.
 */
export const keyManagerFeaturesSection = z
  .object({
    /** Applications' tokens are issued through this key manager (GetNewApplicationAccessToken, /oauth2/token). */
    enable_token_generation: z.boolean().default(true),
    /** CreateApplication may make clients at this key manager. */
    enable_oauth_app_creation: z.boolean().default(true),
    /** MapOAuthApplication may map existing clients of this key manager. */
    enable_map_oauth_consumer_apps: z.boolean().default(true),
    /** Tokens are kept only as hashes. Always so here: false is refused. */
    enable_token_hashing: z.literal(true, { message: "tokens are always stored as SHA-256 hashes here: enable_token_hashing cannot be false" }).default(true),
    /**
     * JWTs are validated locally with the key manager's keys. External key managers: the same as
     * jwt_validation = "jwks" (false: "introspection"). The resident key manager (default true): false
     * tells gateways (the Watch stream's Jwks, validate_remotely) to ask the server for each of its JWTs.
     */
    enable_self_validation_jwt: z.boolean().optional(),
    /** The claim of a JWT holding the consumer key (client id). */
    consumer_key_claim: claimName.default("client_id"),
    /** The claim of a JWT holding the scopes (a space-separated string or an array). */
    scopes_claim: claimName.default("scope"),
    /** A claim of the key manager's tokens (remote) read as one of this service's (local), e.g. remote "appid", local "client_id". */
    claim_mappings: z
      .array(z.object({ remote: claimName, local: claimName }).strict())
      .max(50)
      .default([])
      .refine((list) => new Set(list.map((m) => m.remote)).size === list.length, { message: "each remote claim is mapped once" }),
    /** Grant types clients of this key manager may have and use; others are refused. */
    available_grant_types: z
      .array(z.enum(KNOWN_GRANT_TYPES, { message: `must be one of ${KNOWN_GRANT_TYPES.join(", ")}` }))
      .min(1)
      .default([...KNOWN_GRANT_TYPES]),
  })
  .strict()
  .prefault({});

export type KeyManagerFeaturesSection = z.infer<typeof keyManagerFeaturesSection>;

/** The switches as the rest of the service reads them. */
export interface KeyManagerFeatures {
  enableTokenGeneration: boolean;
  enableOAuthAppCreation: boolean;
  enableMapOAuthConsumerApps: boolean;
  enableTokenHashing: boolean;
  enableSelfValidationJwt: boolean;
  consumerKeyClaim: string;
  scopesClaim: string;
  claimMappings: Array<{ remote: string; local: string }>;
  availableGrantTypes: string[];
}

export function featuresFromSection(s: KeyManagerFeaturesSection, selfValidationJwt: boolean): KeyManagerFeatures {
  return {
    enableTokenGeneration: s.enable_token_generation,
    enableOAuthAppCreation: s.enable_oauth_app_creation,
    enableMapOAuthConsumerApps: s.enable_map_oauth_consumer_apps,
    enableTokenHashing: s.enable_token_hashing,
    enableSelfValidationJwt: selfValidationJwt,
    consumerKeyClaim: s.consumer_key_claim,
    scopesClaim: s.scopes_claim,
    claimMappings: s.claim_mappings.map((m) => ({ ...m })),
    availableGrantTypes: [...s.available_grant_types],
  };
}
