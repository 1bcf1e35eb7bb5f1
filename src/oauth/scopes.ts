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

/**
 * The scopes of a token derived from another token or an assertion (JWT bearer, token exchange):
 * those requested that are `available`; with none requested, those of `whenNoneRequested` that are
 * available, else "default". Undefined when scopes were requested and none is available (the
 * grant answers invalid_scope).
 */
export function narrowScopes(requested: readonly string[], available: readonly string[], whenNoneRequested: readonly string[]): string[] | undefined {
  const allowed = new Set(available);
  if (requested.length > 0) {
    const granted = [...new Set(requested)].filter((s) => allowed.has(s));
    return granted.length > 0 ? granted : undefined;
  }
  const granted = [...new Set(whenNoneRequested)].filter((s) => allowed.has(s));
  return granted.length > 0 ? granted : [DEFAULT_SCOPE];
}
