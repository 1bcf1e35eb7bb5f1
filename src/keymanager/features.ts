import type { KeyManagerFeatures } from "../config/key-manager-features.js";
import { FailedPreconditionError, InvalidArgumentError } from "../domain/errors.js";
import { DEFAULT_GRANT_TYPES } from "./grant-types.js";

/**
 * WSO2's per key manager switches, applied: each refusal names the key manager and the switch, so
 * an operator knows which line of the configuration said no.
 */
export function requireAppCreation(keyManager: string, f: KeyManagerFeatures): void {
  if (!f.enableOAuthAppCreation) {
    throw new FailedPreconditionError(`key manager "${keyManager}" does not create OAuth applications (enable_oauth_app_creation = false)`);
  }
}

export function requireAppMapping(keyManager: string, f: KeyManagerFeatures): void {
  if (!f.enableMapOAuthConsumerApps) {
    throw new FailedPreconditionError(`key manager "${keyManager}" does not map existing OAuth applications (enable_map_oauth_consumer_apps = false)`);
  }
}

/** Before a token is issued to an application: generation on, and the grant one this key manager offers. */
export function requireTokenGeneration(keyManager: string, f: KeyManagerFeatures, grantType: string): void {
  if (!f.enableTokenGeneration) {
    throw new FailedPreconditionError(`key manager "${keyManager}" does not generate tokens (enable_token_generation = false)`, {
      oauth: "unauthorized_client",
    });
  }
  if (grantType !== "" && !f.availableGrantTypes.includes(grantType)) {
    throw new InvalidArgumentError([{ field: "grant_type", description: `is not available at key manager "${keyManager}" (available_grant_types)` }], {
      oauth: "unsupported_grant_type",
    });
  }
}

/** The grant types a new client gets when it names none: the usual ones this key manager offers. */
export function defaultGrantTypes(f: KeyManagerFeatures): string[] {
  const offered = DEFAULT_GRANT_TYPES.filter((g) => f.availableGrantTypes.includes(g));
  return offered.length > 0 ? offered : f.availableGrantTypes.slice(0, 1);
}
