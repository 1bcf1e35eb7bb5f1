import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { UpdateRegisteredResourceRequest } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  type ApiResource as PbApiResource,
  type RegisteredResource as PbRegisteredResource,
  RegisteredResourceSchema,
} from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { ApiResource, HttpVerb, RegisteredResource, ResourceInput, ResourcePatch } from "../domain/model/index.js";
import { authLevelFromPb, authLevelToPb } from "./enums.js";
import { updatePaths } from "./update-mask.js";

export function resourceInputFromPb(r: PbRegisteredResource | undefined): ResourceInput {
  const v = new Validator();
  const resources = resourcesFromPb(v, r?.resources ?? []);
  v.throwIfInvalid();
  return { apiId: r?.apiId ?? "", resources, properties: r?.properties ?? {} };
}

const UPDATABLE = ["resources", "properties"] as const;

/**
 * The API and what an UpdateRegisteredResource replaces: the paths of update_mask, or without a
 * mask the resources when any are given and the properties when any are given.
 */
export function resourcePatchFromPb(req: UpdateRegisteredResourceRequest): { apiId: string; patch: ResourcePatch } {
  const v = new Validator();
  const r = req.resource ?? create(RegisteredResourceSchema);
  v.required("resource.api_id", r.apiId);
  const isSet = { resources: r.resources.length > 0, properties: Object.keys(r.properties).length > 0 };
  const paths = updatePaths(v, req.updateMask, UPDATABLE, (p) => isSet[p]);
  if (paths.length === 0) v.add("update_mask", "give resources, properties or both to change");
  const resources = resourcesFromPb(v, r.resources);
  v.throwIfInvalid();
  const patch: ResourcePatch = {};
  if (paths.includes("resources")) patch.resources = resources;
  if (paths.includes("properties")) patch.properties = r.properties;
  return { apiId: r.apiId, patch };
}

function resourcesFromPb(v: Validator, resources: PbApiResource[]): ApiResource[] {
  return resources.map(
    (r, i): ApiResource => ({
      uriTemplate: r.uriTemplate,
      // Verbs are matched case-insensitively, stored upper-case; the domain checks the set.
      httpVerb: r.httpVerb.toUpperCase() as HttpVerb,
      authLevel: authLevelFromPb(v, `resources[${i}].auth_level`, r.authLevel),
      scopes: r.scopes,
      throttlingTier: r.throttlingTier || "Unlimited",
    }),
  );
}

export function registeredResourceToPb(r: RegisteredResource): MessageInitShape<typeof RegisteredResourceSchema> {
  return {
    apiId: r.apiId,
    resources: r.resources.map((x) => ({ ...x, authLevel: authLevelToPb(x.authLevel) })),
    properties: r.properties,
    createTime: timestampFromDate(r.createdAt),
    updateTime: timestampFromDate(r.updatedAt),
  };
}
