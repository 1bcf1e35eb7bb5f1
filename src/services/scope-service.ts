import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { ResourceScopes as PbResourceScopes, ScopeService } from "../../gen/keymanager/v1/scope_service_pb.js";
import { type Scope as PbScope, ScopeSchema } from "../../gen/keymanager/v1/types_pb.js";
import type { ResourceScopes, Scope, ScopeInput } from "../domain/model/index.js";
import { Validator } from "../domain/validator.js";
import type { ResourceScopeChange, ScopeManager } from "../oauth/scope-manager.js";
import { listName, type Paging } from "./page-tokens.js";
import { registeredResourceToPb } from "./resource-mapping.js";
import { updatePaths } from "./update-mask.js";

type Impl = ServiceImpl<typeof ScopeService>;

/** The fields UpdateScope may change, by proto name, with their domain names. */
const UPDATABLE = {
  display_name: "displayName",
  description: "description",
  roles: "roles",
} as const satisfies Record<string, keyof ScopeInput>;
type UpdatablePath = keyof typeof UPDATABLE;
const UPDATABLE_PATHS = Object.keys(UPDATABLE) as UpdatablePath[];

/** keymanager.v1.ScopeService: scopes, their role bindings, and resources' scopes (admin scope). */
export class ScopeServiceImpl implements Impl {
  constructor(
    private readonly scopes: ScopeManager,
    private readonly paging: Paging,
  ) {}

  async registerScope(req: Parameters<Impl["registerScope"]>[0]) {
    return { scope: scopeToPb(await this.scopes.register(fromPb(req.scope))) };
  }

  async getScopeByName(req: Parameters<Impl["getScopeByName"]>[0]) {
    return { scope: scopeToPb(await this.scopes.get(req.name)) };
  }

  async getAllScopes(req: Parameters<Impl["getAllScopes"]>[0]) {
    const list = listName("GetAllScopes");
    const page = await this.scopes.list(this.paging.query(list, req));
    return { scopes: page.items.map(scopeToPb), nextPageToken: this.paging.nextPageToken(list, page) };
  }

  async updateScope(req: Parameters<Impl["updateScope"]>[0]) {
    const given = fromPb(req.scope);
    const v = new Validator();
    v.required("scope.name", given.name);
    const paths = updatePaths(v, req.updateMask, UPDATABLE_PATHS, (p) => isSet(given[UPDATABLE[p]]));
    if (v.ok && paths.length === 0) v.add("update_mask", "name a field to change, or set one");
    v.throwIfInvalid();
    const patch: Partial<ScopeInput> = {};
    for (const p of paths) Object.assign(patch, { [UPDATABLE[p]]: given[UPDATABLE[p]] });
    return { scope: scopeToPb(await this.scopes.update(given.name, patch)) };
  }

  async deleteScope(req: Parameters<Impl["deleteScope"]>[0]) {
    await this.scopes.delete(req.name);
    return {};
  }

  async isScopeExists(req: Parameters<Impl["isScopeExists"]>[0]) {
    return { exists: await this.scopes.exists(req.name) };
  }

  async validateScopes(req: Parameters<Impl["validateScopes"]>[0]) {
    const unknownNames = await this.scopes.unknown(req.names);
    return { valid: unknownNames.length === 0, unknownNames };
  }

  async getScopesForAPIs(req: Parameters<Impl["getScopesForAPIs"]>[0]) {
    const apis = await this.scopes.forApis(req.apiIds);
    return { apis: apis.map((a) => ({ apiId: a.apiId, scopes: a.scopes.map(scopeToPb) })) };
  }

  attachResourceScopes(req: Parameters<Impl["attachResourceScopes"]>[0]) {
    return this.change("attach", req);
  }

  updateResourceScopes(req: Parameters<Impl["updateResourceScopes"]>[0]) {
    return this.change("update", req);
  }

  detachResourceScopes(req: Parameters<Impl["detachResourceScopes"]>[0]) {
    return this.change("detach", req);
  }

  private async change(change: ResourceScopeChange, req: { apiId: string; resources: PbResourceScopes[] }) {
    const resource = await this.scopes.changeResourceScopes(change, req.apiId, req.resources.map(resourceScopesFromPb));
    return { resource: registeredResourceToPb(resource) };
  }
}

function isSet(value: string | string[]): boolean {
  return Array.isArray(value) ? value.length > 0 : value !== "";
}

function fromPb(pb: PbScope | undefined): ScopeInput {
  const s = pb ?? create(ScopeSchema);
  return { name: s.name, displayName: s.displayName, description: s.description, roles: [...s.roles] };
}

function resourceScopesFromPb(r: PbResourceScopes): ResourceScopes {
  return { uriTemplate: r.uriTemplate, httpVerb: r.httpVerb, scopes: [...r.scopes] };
}

export function scopeToPb(s: Scope) {
  return {
    name: s.name,
    displayName: s.displayName,
    description: s.description,
    roles: s.roles,
    createTime: timestampFromDate(s.createdAt),
    updateTime: timestampFromDate(s.updatedAt),
  };
}
