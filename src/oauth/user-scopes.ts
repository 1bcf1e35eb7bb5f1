import type { Store } from "../storage/store.js";
import { scopesForUser } from "./scopes.js";

/**
 * The scopes a user's token gets of those a grant or an authorization request decided: the
 * registered scopes' role bindings read from the store, applied by scopesForUser. Token issuance
 * and the consent page both ask here, so the page shows what the token will carry.
 */
export async function userScopes(store: Pick<Store, "scopes" | "users">, username: string, scopes: readonly string[]): Promise<string[]> {
  const bound = (await store.scopes.findMany(scopes)).filter((s) => s.roles.length > 0);
  if (bound.length === 0) return [...scopes];
  const user = await store.users.find(username);
  return scopesForUser(scopes, user?.roles ?? [], new Map(bound.map((s) => [s.name, s.roles])));
}
