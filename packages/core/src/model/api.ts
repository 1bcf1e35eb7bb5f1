/** APIs, as a publisher registers them, and their resources (URI templates with a verb). */

/** Who may call a resource: an application token, a user token, either, or no token at all. */
export const AUTH_LEVELS = ["APPLICATION", "APPLICATION_USER", "ANY", "NONE"] as const;
export type AuthLevel = (typeof AUTH_LEVELS)[number];

export const HTTP_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
export type HttpVerb = (typeof HTTP_VERBS)[number];

/** An API as a gateway knows it: found by its context and version. */
export interface Api {
  apiId: string;
  name: string;
  /** Starts with "/", no trailing "/": "/pizzashack", "/t/example.com/orders". */
  context: string;
  version: string;
  publisher: string;
  apiTier: string;
}

/** One resource of an API: a URI template and a verb, who may call it, and its throttling tier. */
export interface ApiResource {
  /** Relative to the API's context and version: "/order/{orderId}", "/menu", "/*", "/{+path}". */
  uriTemplate: string;
  httpVerb: HttpVerb;
  authLevel: AuthLevel;
  /** A token needs one of these (none: any token will do). */
  scopes: string[];
  throttlingTier: string;
}
