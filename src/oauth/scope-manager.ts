import { isSystemScope } from "../auth/scopes.js";
import type { ScopeLimits } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { FailedPreconditionError } from "../domain/errors.js";
import type { ApiResource, RegisteredResource, ResourceScopes, Scope, ScopeInput } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { Validator } from "../domain/validator.js";
import { checkIdentifier, checkScopes, checkScopeToken, LIMITS } from "../keymanager/validation.js";
import { LOCK } from "../storage/locks.js";
import type { Store } from "../storage/store.js";
import { checkRoleNames, USER_ATTRIBUTE_LIMITS } from "./user-manager.js";

/** Role bindings of one scope: as many as a user may hold (fixed, as users' roles are). */
const MAX_ROLES = USER_ATTRIBUTE_LIMITS.roles;

/** How Attach-, Update- and DetachResourceScopes change one resource's scopes. */
export type ResourceScopeChange = "attach" | "update" | "detach";

/** ScopeService's domain: scopes, their role bindings, and the scopes APIs' resources require. */
export class ScopeManager {
  /** `limits` is read per call, so a configuration reload applies at once. */
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly limits: () => ScopeLimits,
  ) {}

  async register(input: ScopeInput): Promise<Scope> {
    checkScope(input, this.limits());
    const now = this.clock.now();
    const scope: Scope = { ...input, createdAt: now, updatedAt: now };
    await this.store.transaction(async (s) => {
      await s.scopes.insert(scope);
      s.changed({ kind: "scope", name: scope.name });
    });
    return scope;
  }

  get(name: string): Promise<Scope> {
    checkName(name);
    return this.store.scopes.get(name);
  }

  list(page: PageQuery): Promise<Page<Scope>> {
    return this.store.scopes.list(page);
  }

  async exists(name: string): Promise<boolean> {
    checkName(name);
    return (await this.store.scopes.find(name)) !== undefined;
  }

  /** Applies `patch`, the row locked, so concurrent updates of other fields are kept. */
  async update(name: string, patch: Partial<Omit<ScopeInput, "name">>): Promise<Scope> {
    checkName(name);
    return this.store.transaction(async (s) => {
      const current = await s.scopes.get(name, LOCK);
      const next: Scope = { ...current, ...patch, name: current.name, updatedAt: this.clock.now() };
      checkScope(next, this.limits());
      await s.scopes.update(next);
      s.changed({ kind: "scope", name });
      return next;
    });
  }

  /** Refused while a resource requires it: the resource would then require a scope nobody can get. */
  async delete(name: string): Promise<void> {
    checkName(name);
    await this.store.transaction(async (s) => {
      await s.scopes.get(name, LOCK);
      const apiId = await s.resources.apiRequiring(name);
      if (apiId !== undefined) throw new FailedPreconditionError(`the resources of API ${apiId} require this scope: detach it first`);
      await s.scopes.delete(name);
      s.changed({ kind: "scope", name });
    });
  }

  /** The names that are not registered scopes, in the order given. */
  async unknown(names: readonly string[]): Promise<string[]> {
    const v = new Validator();
    checkNameList(v, "names", names, this.limits().maxNamesPerCall);
    v.throwIfInvalid();
    const known = new Set((await this.store.scopes.findMany(names)).map((s) => s.name));
    return names.filter((n) => !known.has(n));
  }

  /** For each API id, the registered scopes its resources require, ordered by name. */
  async forApis(apiIds: readonly string[]): Promise<Array<{ apiId: string; scopes: Scope[] }>> {
    const v = new Validator();
    if (apiIds.length === 0) v.add("api_ids", "name at least one API");
    else if (apiIds.length > this.limits().maxNamesPerCall) v.add("api_ids", `at most ${this.limits().maxNamesPerCall}`);
    else {
      apiIds.forEach((id, i) => {
        checkIdentifier(v, `api_ids[${i}]`, id);
      });
    }
    v.throwIfInvalid();
    const registered = await this.store.resources.findMany(apiIds);
    const names = registered.flatMap((r) => r.resources.flatMap((res) => res.scopes));
    const scopes = new Map((await this.store.scopes.findMany(names)).map((s) => [s.name, s]));
    return apiIds.map((apiId) => {
      const required = new Set(registered.find((r) => r.apiId === apiId)?.resources.flatMap((res) => res.scopes));
      return { apiId, scopes: [...scopes.values()].filter((s) => required.has(s.name)) };
    });
  }

  /** Changes the scopes of resources of an API, each a registered scope; the API's resources after. */
  async changeResourceScopes(change: ResourceScopeChange, apiId: string, given: readonly ResourceScopes[]): Promise<RegisteredResource> {
    checkResourceScopes(apiId, given, change);
    return this.store.transaction(async (s) => {
      const current = await s.resources.get(apiId, LOCK);
      const v = new Validator();
      const indexes = given.map((g, i) => {
        const at = current.resources.findIndex((r) => r.uriTemplate === g.uriTemplate && r.httpVerb === g.httpVerb);
        if (at < 0) v.add(`resources[${i}]`, `the API has no resource ${g.httpVerb} ${g.uriTemplate}`);
        return at;
      });
      // Locked, so a DeleteScope waits for this change and then sees the scope required.
      const known = new Set(
        (
          await s.scopes.findMany(
            given.flatMap((g) => g.scopes),
            LOCK,
          )
        ).map((sc) => sc.name),
      );
      given.forEach((g, i) => {
        g.scopes.forEach((name, j) => {
          if (!known.has(name) && change !== "detach") v.add(`resources[${i}].scopes[${j}]`, "is not a registered scope");
        });
      });
      v.throwIfInvalid();
      const resources = [...current.resources];
      given.forEach((g, i) => {
        const at = indexes[i] as number;
        resources[at] = withScopes(resources[at] as ApiResource, change, g.scopes);
      });
      const updatedAt = this.clock.now();
      await s.resources.replace(apiId, resources, current.properties, updatedAt);
      s.changed({ kind: "resources", apiId });
      return { ...current, resources, updatedAt };
    });
  }
}

function withScopes(resource: ApiResource, change: ResourceScopeChange, scopes: readonly string[]): ApiResource {
  switch (change) {
    case "attach":
      return { ...resource, scopes: [...new Set([...resource.scopes, ...scopes])] };
    case "update":
      return { ...resource, scopes: [...new Set(scopes)] };
    case "detach":
      return { ...resource, scopes: scopes.length === 0 ? [] : resource.scopes.filter((sc) => !scopes.includes(sc)) };
  }
}

function checkName(name: string, field = "name"): void {
  const v = new Validator();
  checkScopeName(v, field, name);
  v.throwIfInvalid();
}

function checkScopeName(v: Validator, field: string, name: string): void {
  if (!v.required(field, name)) return;
  const before = v.ok;
  checkScopeToken(v, field, name);
  if (before && !v.ok) return;
  if (isSystemScope(name)) v.add(field, "is reserved for system clients");
}

function checkNameList(v: Validator, field: string, names: readonly string[], max: number): void {
  if (names.length === 0) v.add(field, "name at least one scope");
  else if (names.length > max) v.add(field, `at most ${max}`);
  else {
    names.forEach((name, i) => {
      checkScopeToken(v, `${field}[${i}]`, name);
    });
  }
}

/** Every rule of a scope's fields, so one answer names every bad field. */
export function checkScope(s: ScopeInput, limits: ScopeLimits, prefix = "scope."): void {
  const v = new Validator();
  checkScopeName(v, `${prefix}name`, s.name);
  v.optionalText(`${prefix}display_name`, s.displayName, limits.maxDisplayNameChars);
  v.optionalText(`${prefix}description`, s.description, limits.maxDescriptionChars);
  if (s.roles.length > MAX_ROLES) v.add(`${prefix}roles`, `at most ${MAX_ROLES} roles`);
  else checkRoleNames(v, `${prefix}roles`, s.roles);
  v.throwIfInvalid();
}

function checkResourceScopes(apiId: string, given: readonly ResourceScopes[], change: ResourceScopeChange): void {
  const v = new Validator();
  checkIdentifier(v, "api_id", apiId);
  if (given.length === 0) v.add("resources", "name at least one resource");
  else if (given.length > LIMITS.resources) v.add("resources", `at most ${LIMITS.resources} resources`);
  else {
    given.forEach((g, i) => {
      v.required(`resources[${i}].uri_template`, g.uriTemplate);
      v.required(`resources[${i}].http_verb`, g.httpVerb);
      if (change === "attach" && g.scopes.length === 0) v.add(`resources[${i}].scopes`, "name at least one scope to attach");
      checkScopes(v, `resources[${i}].scopes`, g.scopes);
    });
  }
  v.throwIfInvalid();
}
