import type { KeyManagerFeatures } from "../config/key-manager-features.js";

/**
 * The resident key manager's JWT claims with its configured names added: the consumer key also
 * under consumer_key_claim, the scopes under scopes_claim, and each claim mapping's local claim
 * copied under its remote name (what a reader configured with the same mapping reads back). The
 * standard claims stay as they are (gateways and this service read client_id and scope); a
 * configured name never replaces a claim already there.
 */
export function withConfiguredClaims(
  claims: Record<string, unknown>,
  f: Pick<KeyManagerFeatures, "consumerKeyClaim" | "scopesClaim" | "claimMappings">,
): Record<string, unknown> {
  const out = { ...claims };
  const add = (name: string, value: unknown) => {
    if (value !== undefined && !(name in out)) out[name] = value;
  };
  add(f.consumerKeyClaim, claims.client_id);
  add(f.scopesClaim, claims.scope);
  for (const m of f.claimMappings) add(m.remote, out[m.local]);
  return out;
}

/**
 * A key manager's JWT claims as this service reads them: each mapped remote claim under its local
 * name (unless the token has that claim itself), then the consumer key from consumer_key_claim and
 * the scopes from scopes_claim (a space-separated string or an array of strings).
 */
export function readConfiguredClaims(
  payload: Record<string, unknown>,
  f: Pick<KeyManagerFeatures, "consumerKeyClaim" | "scopesClaim" | "claimMappings">,
): { clientId: string | undefined; scopes: string[] | undefined; claims: Record<string, unknown> } {
  const claims = { ...payload };
  for (const m of f.claimMappings) if (payload[m.remote] !== undefined && claims[m.local] === undefined) claims[m.local] = payload[m.remote];
  const key = claims[f.consumerKeyClaim];
  const scope = claims[f.scopesClaim];
  const scopes =
    typeof scope === "string"
      ? scope.split(" ").filter((s) => s !== "")
      : Array.isArray(scope) && scope.every((s) => typeof s === "string")
        ? (scope as string[])
        : undefined;
  return { clientId: typeof key === "string" ? key : undefined, scopes, claims };
}
