import { InvalidArgumentError } from "../../domain/errors.js";
import type { OAuthClient } from "../../domain/model/index.js";
import type { IssuerJwt } from "../issuer-jwts.js";
import { narrowScopes } from "../scopes.js";

/**
 * Scopes of a token issued for a trusted issuer's subject: requested ones (or, none requested,
 * those of the JWT's scope claim) that the issuer allows, the client may have and, when the JWT
 * carries a scope claim, the JWT holds.
 */
export function scopesFromIssuerJwt(client: OAuthClient, jwt: IssuerJwt, requested: readonly string[]): string[] {
  const clientScopes = new Set(client.scopes);
  const held = jwt.scopes === undefined ? undefined : new Set(jwt.scopes);
  const available = jwt.issuer.allowedScopes.filter((s) => clientScopes.has(s) && (held === undefined || held.has(s)));
  return scopesOrRefusal(narrowScopes(requested, available, jwt.scopes ?? []));
}

export function scopesOrRefusal(scopes: string[] | undefined): string[] {
  if (!scopes) throw new InvalidArgumentError([{ field: "scopes", description: "none of the scopes asked for may be granted" }], { oauth: "invalid_scope" });
  return scopes;
}
