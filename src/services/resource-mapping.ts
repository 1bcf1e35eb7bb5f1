import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ApiResource as PbApiResource, RegisteredResourceSchema } from "../../gen/keymanager/v1/types_pb.js";
import { Validator } from "../domain/validator.js";
import type { ApiResource, HttpVerb, RegisteredResource, ResourceInput } from "../domain/model/index.js";
import { authLevelFromPb, authLevelToPb } from "./enums.js";

export function resourceInputFromPb(req: { apiId: string; resources: PbApiResource[]; properties: Record<string, string> }): ResourceInput {
  const v = new Validator();
  const resources = req.resources.map(
    (r, i): ApiResource => ({
      uriTemplate: r.uriTemplate,
      // Verbs are matched case-insensitively, stored upper-case; the domain checks the set.
      httpVerb: r.httpVerb.toUpperCase() as HttpVerb,
      authLevel: authLevelFromPb(v, `resources[${i}].auth_level`, r.authLevel),
      scopes: r.scopes,
      throttlingTier: r.throttlingTier || "Unlimited",
    }),
  );
  v.throwIfInvalid();
  return { apiId: req.apiId, resources, properties: req.properties };
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
