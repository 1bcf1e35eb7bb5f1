/** APIs as the publisher registers them with the key manager, and their resources (URI templates). */
import type * as core from "@keymanager/core";
import type { ApiResource } from "@keymanager/core";

export { AUTH_LEVELS, type ApiResource, type AuthLevel, HTTP_VERBS, type HttpVerb } from "@keymanager/core";

/** An API as stored: what gateways know of it (@keymanager/core), and when it changed. */
export interface Api extends core.Api {
  createdAt: Date;
  updatedAt: Date;
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

/** What an update of an API's registered resources replaces: its resources, its properties, or both. */
export interface ResourcePatch {
  resources?: ApiResource[];
  properties?: Record<string, string>;
}
