import { STORE_KEYS_PATH, STORE_KEYS_TEMPLATE } from "./store-rest-routes.js";

/** The HTTP port's own paths (besides the RPCs'), named as themselves in metrics and access lines. */
const FIXED_PATHS = new Set([
  "/healthz",
  "/livez",
  "/metrics",
  "/.well-known/oauth-authorization-server",
  "/oauth2/token",
  "/oauth2/introspect",
  "/oauth2/revoke",
  "/oauth2/jwks",
  "/oauth2/authorize",
  "/oauth2/userinfo",
  "/.well-known/openid-configuration",
  "/oauth2/logout",
  "/oauth2/static/pages.css",
  "/openapi/store.json",
  "/openapi/oauth2.json",
  "/gateway/forward-auth",
]);

/** Every path of a request not to an RPC not listed here. */
export const OTHER_ROUTE = "other";

/**
 * The label of a request path: a fixed path, a route's template (never its identifiers), or
 * "other", so the set of labels stays fixed whatever callers send.
 */
export function routeLabel(path: string): string {
  if (FIXED_PATHS.has(path)) return path;
  if (STORE_KEYS_PATH.test(path)) return STORE_KEYS_TEMPLATE;
  return OTHER_ROUTE;
}
