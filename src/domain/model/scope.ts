/**
 * A scope APIs' resources may require (WSO2's Scope). Its role bindings make it role-based: a
 * user's token gets it only when the user holds one of the roles.
 */
export interface Scope {
  /** As tokens carry it: the natural key. */
  name: string;
  displayName: string;
  description: string;
  /** Roles of which a user must hold one; empty: any user. */
  roles: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** What RegisterScope and UpdateScope give: a scope without its times. */
export type ScopeInput = Omit<Scope, "createdAt" | "updatedAt">;

/** Resources of an API, by template and verb, and scopes to attach, set or detach. */
export interface ResourceScopes {
  uriTemplate: string;
  httpVerb: string;
  scopes: string[];
}
