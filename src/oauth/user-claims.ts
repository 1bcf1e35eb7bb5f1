import type { User } from "../domain/model/index.js";

/** The OpenID Connect scopes: asked for by a client whatever API scopes it was registered with. */
export const OIDC_SCOPES: readonly string[] = ["openid", "profile", "email", "roles"];

export type Claims = { sub: string; name?: string; email?: string; roles?: string[] };

/**
 * The claims of a user that these scopes give (OpenID Connect Core 5.4): sub always, name with
 * profile, email with email, roles with roles; an attribute the user does not have is left out.
 */
export function claimsFor(user: User, scopes: readonly string[]): Claims {
  return {
    sub: user.username,
    ...(scopes.includes("profile") && user.name !== "" ? { name: user.name } : {}),
    ...(scopes.includes("email") && user.email !== "" ? { email: user.email } : {}),
    ...(scopes.includes("roles") && user.roles.length > 0 ? { roles: user.roles } : {}),
  };
}

/** WSO2's getUserClaims: every claim of the user, as text (roles comma-separated). */
export function userClaimsMap(user: User): Record<string, string> {
  const claims = claimsFor(user, OIDC_SCOPES);
  return Object.fromEntries(Object.entries(claims).map(([name, value]) => [name, Array.isArray(value) ? value.join(",") : value]));
}
