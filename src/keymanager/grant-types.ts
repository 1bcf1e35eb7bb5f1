/** Grant type names a client may be registered with (the seed's list and the common RFC ones). */
export const KNOWN_GRANT_TYPES = [
  "client_credentials",
  "password",
  "refresh_token",
  "authorization_code",
  "implicit",
  "urn:ietf:params:oauth:grant-type:saml2-bearer",
  "urn:ietf:params:oauth:grant-type:jwt-bearer",
  "urn:ietf:params:oauth:grant-type:device_code",
  "urn:ietf:params:oauth:grant-type:token-exchange",
  "iwa:ntlm",
] as const;

/** Grants that send the user agent back to the client, so they need a callback URL. */
export const REDIRECTING_GRANT_TYPES: readonly string[] = ["authorization_code", "implicit"];

/** The grants a public client (no secret) may be registered with. */
export const PUBLIC_CLIENT_GRANT_TYPES: readonly string[] = ["authorization_code", "refresh_token"];

/** Given to a created client that names none. */
export const DEFAULT_GRANT_TYPES = ["client_credentials", "refresh_token"];

const known: ReadonlySet<string> = new Set(KNOWN_GRANT_TYPES);

export function isKnownGrantType(name: string): boolean {
  return known.has(name);
}
