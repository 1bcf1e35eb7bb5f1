/** APIs as the publisher registers them with the key manager, and their resources (URI templates). */

export const AUTH_LEVELS = ["APPLICATION", "APPLICATION_USER", "ANY", "NONE"] as const;
export type AuthLevel = (typeof AUTH_LEVELS)[number];

export const HTTP_VERBS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] as const;
export type HttpVerb = (typeof HTTP_VERBS)[number];

export interface Api {
  apiId: string;
  name: string;
  context: string;
  version: string;
  publisher: string;
  apiTier: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ApiResource {
  uriTemplate: string;
  httpVerb: HttpVerb;
  authLevel: AuthLevel;
  scopes: string[];
  throttlingTier: string;
}

export interface RegisteredResource {
  apiId: string;
  resources: ApiResource[];
  properties: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
}

export interface ResourceInput {
  apiId: string;
  resources: ApiResource[];
  properties: Record<string, string>;
}
