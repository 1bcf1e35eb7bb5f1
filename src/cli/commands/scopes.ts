// km scopes ...: scopes, their role bindings, and the scopes of APIs' resources (ScopeService).
import type { JsonObject } from "@bufbuild/protobuf";
import { ScopeService } from "../../../gen/keymanager/v1/scope_service_pb.js";
import { type CliOption, type CommandGroup, type CommandInput, defined, list, optional, required, UsageError } from "../command.js";
import { rpcCommand, updateMask } from "../rpc.js";
import { pagingOptions, pagingRequest } from "./paging.js";

const name: Record<string, CliOption> = { name: { type: "string", value: "SCOPE", help: "the scope, as tokens carry it" } };
const scopeFields: Record<string, CliOption> = {
  "display-name": { type: "string", value: "TEXT", help: "a name for people" },
  description: { type: "string", value: "TEXT", help: "what it allows" },
  role: { type: "string", multiple: true, value: "ROLE", help: "a role of which a user needs one for the scope (repeat); none: any user" },
};
const resourceScopes: Record<string, CliOption> = {
  "api-id": { type: "string", value: "ID", help: "the API" },
  resource: {
    type: "string",
    multiple: true,
    value: "'VERB TEMPLATE [SCOPE,…]'",
    help: "a registered resource of the API and scopes (repeat), e.g. 'POST /order/{id} order:write'",
  },
};

/** The Scope fields the options give, in the contract's JSON form. */
function scopeJson(input: CommandInput): JsonObject {
  return defined({
    displayName: optional(input.values, "display-name"),
    description: optional(input.values, "description"),
    roles: list(input.values, "role"),
  });
}

/** `--resource 'VERB TEMPLATE [SCOPE,…]'` as a ResourceScopes. */
export function parseResourceScopes(text: string): JsonObject {
  const [verb, uriTemplate, scopes, extra] = text.trim().split(/\s+/);
  if (!verb || !uriTemplate || extra !== undefined)
    throw new UsageError(`--resource "${text}": give a verb, a URI template and scopes, e.g. 'POST /order/{id} order:write'`);
  return { httpVerb: verb.toUpperCase(), uriTemplate, scopes: (scopes ?? "").split(",").filter((s) => s !== "") };
}

function resourcesRequest(input: CommandInput): JsonObject {
  const given = input.values.resource;
  const resources = Array.isArray(given) ? given.map(parseResourceScopes) : [];
  if (resources.length === 0 && input.values.data === undefined) throw new UsageError("give at least one --resource");
  return { apiId: required(input.values, "api-id"), resources };
}

export const scopes: CommandGroup = {
  summary: "scopes and role-based scopes: register, get, list, update, delete, exists, validate, for-apis, attach, set, detach",
  commands: {
    register: rpcCommand(ScopeService, "RegisterScope", {
      summary: "register a scope (with --role: only users holding one get it)",
      options: { ...name, ...scopeFields },
      request: (input) => ({ scope: { name: required(input.values, "name"), ...scopeJson(input) } }),
    }),
    get: rpcCommand(ScopeService, "GetScopeByName", {
      summary: "one scope",
      options: name,
      request: (input) => ({ name: required(input.values, "name") }),
    }),
    list: rpcCommand(ScopeService, "GetAllScopes", {
      summary: "scopes, a page at a time",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    update: rpcCommand(ScopeService, "UpdateScope", {
      summary: "change a scope's fields (only those given; --role replaces the roles)",
      options: { ...name, ...scopeFields },
      request: (input) => {
        const fields = scopeJson(input);
        if (Object.keys(fields).length === 0 && input.values.data === undefined) throw new UsageError("nothing to change: give at least one field");
        return { scope: { name: required(input.values, "name"), ...fields }, updateMask: updateMask(fields) };
      },
    }),
    delete: rpcCommand(ScopeService, "DeleteScope", {
      summary: "delete a scope no resource requires",
      options: name,
      request: (input) => ({ name: required(input.values, "name") }),
    }),
    exists: rpcCommand(ScopeService, "IsScopeExists", {
      summary: "whether a scope is registered",
      options: name,
      request: (input) => ({ name: required(input.values, "name") }),
    }),
    validate: rpcCommand(ScopeService, "ValidateScopes", {
      summary: "whether every scope named is registered, and which are not",
      options: { name: { type: "string", multiple: true, value: "SCOPE", help: "a scope (repeat)" } },
      request: (input) => ({ names: list(input.values, "name") ?? [] }),
    }),
    "for-apis": rpcCommand(ScopeService, "GetScopesForAPIs", {
      summary: "the registered scopes each API's resources require",
      options: { "api-id": { type: "string", multiple: true, value: "ID", help: "an API (repeat)" } },
      request: (input) => ({ apiIds: list(input.values, "api-id") ?? [] }),
    }),
    attach: rpcCommand(ScopeService, "AttachResourceScopes", {
      summary: "add scopes to resources of an API",
      options: resourceScopes,
      request: resourcesRequest,
    }),
    set: rpcCommand(ScopeService, "UpdateResourceScopes", {
      summary: "replace the scopes of resources of an API",
      options: resourceScopes,
      request: resourcesRequest,
    }),
    detach: rpcCommand(ScopeService, "DetachResourceScopes", {
      summary: "remove scopes from resources of an API (a resource without scopes: all of them)",
      options: resourceScopes,
      request: resourcesRequest,
    }),
  },
};
