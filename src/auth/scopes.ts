import type { DescMethod, DescService } from "@bufbuild/protobuf";

/** The scopes of system clients' tokens; each gates a group of calls. */
export const SCOPES = {
  /** The store: applications, their keys and tokens (the seed's Store REST API scope). */
  store: "apim:subscribe",
  /** Gateways: ValidateToken, Watch, Envoy's ext_authz Check, forward auth. */
  gateway: "km:gateway",
  /** Operators: configuration, resources, APIs, subscriptions, users, signing keys, system clients, trusted issuers, scopes (ScopeService). */
  admin: "km:admin",
} as const;

export type SystemScope = (typeof SCOPES)[keyof typeof SCOPES];

export const SYSTEM_SCOPES: readonly string[] = Object.values(SCOPES);

/** Scopes only system clients may hold: an application asking for one is refused. */
export function isSystemScope(scope: string): boolean {
  return SYSTEM_SCOPES.includes(scope);
}

// KeyManagerService calls that are not the store's: configuration and API resources.
const ADMIN_KEY_MANAGER_METHODS = new Set([
  "GetKeyManagerConfiguration",
  "LoadConfiguration",
  "RegisterNewResource",
  "GetResourceByApiId",
  "UpdateRegisteredResource",
  "DeleteRegisteredResourceByApiId",
]);

// KeyManagerService calls of gateways: a user's claims for the backend JWT they build, which key
// manager handles a token.
const GATEWAY_KEY_MANAGER_METHODS = new Set(["GetUserClaims", "CanHandleToken"]);

/** The one table of who may call what: the scope a method needs. */
export function requiredScope(service: DescService, method: DescMethod): SystemScope {
  switch (service.typeName) {
    case "keymanager.v1.TokenValidationService":
    case "keymanager.v1.GatewaySyncService":
    case "envoy.service.auth.v3.Authorization":
      return SCOPES.gateway;
    case "keymanager.v1.KeyManagerService":
      if (GATEWAY_KEY_MANAGER_METHODS.has(method.name)) return SCOPES.gateway;
      return ADMIN_KEY_MANAGER_METHODS.has(method.name) ? SCOPES.admin : SCOPES.store;
    default:
      return SCOPES.admin;
  }
}
