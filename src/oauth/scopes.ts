/** Granted when a request asks for none, or for none the client may have (WSO2's behaviour). */
export const DEFAULT_SCOPE = "default";

/**
 * The scopes a token gets: those requested that the client may have; "default" when that
 * leaves nothing. A client with no scopes configured may only have "default".
 */
export function grantScopes(requested: readonly string[], allowed: readonly string[]): string[] {
  const allowedSet = new Set(allowed);
  const granted = [...new Set(requested)].filter((s) => allowedSet.has(s));
  return granted.length > 0 ? granted : [DEFAULT_SCOPE];
}

/** Splits an RFC 6749 scope parameter. */
export function parseScopeParameter(scope: string | undefined): string[] {
  return (scope ?? "").split(" ").filter((s) => s.length > 0);
}
