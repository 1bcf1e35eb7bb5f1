// km apis ..., km resources ..., km subscriptions ...: what gateways check a token against.
import type { JsonObject } from "@bufbuild/protobuf";
import { KeyManagerService } from "../../../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../../../gen/keymanager/v1/subscription_service_pb.js";
import { type CliOption, type CommandGroup, type CommandInput, defined, enumName, optional, required, UsageError } from "../command.js";
import { rpcCommand, updateMask } from "../rpc.js";
import { pagingOptions, pagingRequest } from "./paging.js";

const apiId: Record<string, CliOption> = { "api-id": { type: "string", value: "ID", help: "the API's id" } };
const apiFields: Record<string, CliOption> = {
  name: { type: "string", value: "NAME", help: "the API's name" },
  context: { type: "string", value: "PATH", help: "its context, the path prefix gateways serve it under (e.g. /pizzashack)" },
  version: { type: "string", value: "VERSION", help: "its version (e.g. 1.0.0)" },
  publisher: { type: "string", value: "NAME", help: "its publisher" },
  tier: { type: "string", value: "TIER", help: "its throttling tier" },
};

function apiJson(input: CommandInput): JsonObject {
  return defined({
    name: optional(input.values, "name"),
    context: optional(input.values, "context"),
    version: optional(input.values, "version"),
    publisher: optional(input.values, "publisher"),
    apiTier: optional(input.values, "tier"),
  });
}

export const apis: CommandGroup = {
  summary: "APIs gateways serve: create, get, list, update, delete",
  commands: {
    create: rpcCommand(SubscriptionService, "CreateApi", {
      summary: "register an API (its resources: km resources register)",
      options: { ...apiId, ...apiFields },
      request: (input) => ({ api: { apiId: required(input.values, "api-id"), ...apiJson(input) } }),
    }),
    get: rpcCommand(SubscriptionService, "GetApi", {
      summary: "one API",
      options: apiId,
      request: (input) => ({ apiId: required(input.values, "api-id") }),
    }),
    list: rpcCommand(SubscriptionService, "ListApis", {
      summary: "APIs, a page at a time",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    update: rpcCommand(SubscriptionService, "UpdateApi", {
      summary: "change an API's name, context, version, publisher or tier (only those given)",
      options: { ...apiId, ...apiFields },
      request: (input) => {
        const fields = apiJson(input);
        if (Object.keys(fields).length === 0 && input.values.data === undefined) throw new UsageError("nothing to change: give at least one field");
        return { api: { apiId: required(input.values, "api-id"), ...fields }, updateMask: updateMask(fields) };
      },
    }),
    delete: rpcCommand(SubscriptionService, "DeleteApi", {
      summary: "delete an API",
      options: apiId,
      request: (input) => ({ apiId: required(input.values, "api-id") }),
    }),
  },
};

const AUTH_LEVELS = ["application", "application_user", "any", "none"] as const;
const resourceOptions: Record<string, CliOption> = {
  ...apiId,
  resource: {
    type: "string",
    multiple: true,
    value: "'VERB TEMPLATE [SCOPE,...] [AUTH_LEVEL]'",
    help: `a resource (repeat): e.g. 'GET /menu', 'POST /order/{id} order:write application_user'; auth levels ${AUTH_LEVELS.join(", ")} (any by default: application or user tokens)`,
  },
};

/** 'GET /order/{id} scope1,scope2 application' as an ApiResource. */
export function parseResource(text: string): JsonObject {
  const [verb, uriTemplate, ...rest] = text.trim().split(/\s+/);
  if (!verb || !uriTemplate) throw new UsageError(`--resource "${text}": give a verb and a URI template, e.g. 'GET /menu'`);
  const resource: JsonObject = { httpVerb: verb.toUpperCase(), uriTemplate, authLevel: "AUTH_LEVEL_ANY" };
  for (const part of rest) {
    if (AUTH_LEVELS.includes(part.toLowerCase().replaceAll("-", "_") as (typeof AUTH_LEVELS)[number]))
      resource.authLevel = enumName("AUTH_LEVEL", part, AUTH_LEVELS) as string;
    else resource.scopes = part.split(",").filter((s) => s !== "");
  }
  return resource;
}

function resourcesJson(input: CommandInput): JsonObject[] {
  const given = input.values.resource;
  return Array.isArray(given) ? given.map(parseResource) : [];
}

export const resources: CommandGroup = {
  summary: "an API's resources (URI templates, verbs, scopes): register, get, update, delete",
  commands: {
    register: rpcCommand(KeyManagerService, "RegisterNewResource", {
      summary: "register the resources of an API",
      options: resourceOptions,
      request: (input) => ({ resource: { apiId: required(input.values, "api-id"), resources: resourcesJson(input) } }),
    }),
    get: rpcCommand(KeyManagerService, "GetResourceByApiId", {
      summary: "an API's registered resources",
      options: apiId,
      request: (input) => ({ apiId: required(input.values, "api-id") }),
    }),
    update: rpcCommand(KeyManagerService, "UpdateRegisteredResource", {
      summary: "replace an API's resources with those given",
      options: resourceOptions,
      request: (input) => ({ resource: { apiId: required(input.values, "api-id"), resources: resourcesJson(input) }, updateMask: "resources" }),
    }),
    delete: rpcCommand(KeyManagerService, "DeleteRegisteredResourceByApiId", {
      summary: "delete an API's resources",
      options: apiId,
      request: (input) => ({ apiId: required(input.values, "api-id") }),
    }),
  },
};

const STATES = ["unblocked", "blocked", "prod_only_blocked", "on_hold", "rejected", "tier_update_pending"] as const;
const subscriptionId: Record<string, CliOption> = { id: { type: "string", value: "ID", help: "the subscription's id" } };
const subscriptionFields: Record<string, CliOption> = {
  tier: { type: "string", value: "TIER", help: "its throttling tier" },
  state: { type: "string", value: "STATE", help: `${STATES.join(", ")} (unblocked by default)` },
};

function subscriptionJson(input: CommandInput): JsonObject {
  return defined({ tier: optional(input.values, "tier"), state: enumName("SUBSCRIPTION_STATE", optional(input.values, "state"), STATES) });
}

export const subscriptions: CommandGroup = {
  summary: "which application may call which API: create, get, list, update, delete",
  commands: {
    create: rpcCommand(SubscriptionService, "CreateSubscription", {
      summary: "subscribe an application to an API",
      options: {
        "app-id": { type: "string", value: "ID", help: "the application's id" },
        ...apiId,
        ...subscriptionFields,
      },
      request: (input) => ({
        subscription: { applicationId: required(input.values, "app-id"), apiId: required(input.values, "api-id"), ...subscriptionJson(input) },
      }),
    }),
    get: rpcCommand(SubscriptionService, "GetSubscription", {
      summary: "one subscription",
      options: subscriptionId,
      request: (input) => ({ subscriptionId: required(input.values, "id") }),
    }),
    list: rpcCommand(SubscriptionService, "ListSubscriptions", {
      summary: "subscriptions, of an application or to an API, a page at a time",
      options: {
        "app-id": { type: "string", value: "ID", help: "only this application's" },
        "api-id": { type: "string", value: "ID", help: "only those to this API" },
        ...pagingOptions,
      },
      request: (input) => defined({ applicationId: optional(input.values, "app-id"), apiId: optional(input.values, "api-id"), ...pagingRequest(input) }),
    }),
    update: rpcCommand(SubscriptionService, "UpdateSubscription", {
      summary: "block, unblock or re-tier a subscription (only what is given)",
      options: { ...subscriptionId, ...subscriptionFields },
      request: (input) => {
        const fields = subscriptionJson(input);
        if (Object.keys(fields).length === 0 && input.values.data === undefined) throw new UsageError("nothing to change: give --state or --tier");
        return { subscription: { subscriptionId: required(input.values, "id"), ...fields }, updateMask: updateMask(fields) };
      },
    }),
    delete: rpcCommand(SubscriptionService, "DeleteSubscription", {
      summary: "delete a subscription",
      options: subscriptionId,
      request: (input) => ({ subscriptionId: required(input.values, "id") }),
    }),
  },
};
