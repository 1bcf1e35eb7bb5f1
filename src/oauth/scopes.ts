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

/**
 * Role-based scopes (WSO2's): the scopes a user's token may get of those a grant decided. A scope
 * bound to roles (`bindings`: registered scopes' roles by name) only when the user holds one of
 * them; a scope without roles, or not registered, as before; "default" when that leaves nothing.
 * Application tokens (client credentials) are not subject to it: their client's scopes decide.
 */
export function scopesForUser(granted: readonly string[], userRoles: readonly string[], bindings: ReadonlyMap<string, readonly string[]>): string[] {
  const held = new Set(userRoles);
  const kept = granted.filter((scope) => {
    const roles = bindings.get(scope) ?? [];
    return roles.length === 0 || roles.some((role) => held.has(role));
  });
  return kept.length > 0 ? kept : [DEFAULT_SCOPE];
}
