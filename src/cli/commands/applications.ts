// km apps ...: an application's OAuth keys (KeyManagerService).
import type { JsonObject } from "@bufbuild/protobuf";
import { KeyManagerService } from "../../../gen/keymanager/v1/key_manager_service_pb.js";
import { type CliOption, type CommandGroup, type CommandInput, defined, enumName, list, optional, required, UsageError } from "../command.js";
import { rpcCommand, updateMask } from "../rpc.js";
import { pagingOptions, pagingRequest } from "./paging.js";

const KEY_TYPES = ["production", "sandbox"] as const;
const TOKEN_TYPES = ["opaque", "jwt"] as const;

const keyOptions: Record<string, CliOption> = {
  "app-id": { type: "string", value: "ID", help: "the application's id in the store" },
  "key-type": { type: "string", value: "TYPE", help: "production (default) or sandbox" },
};
const consumerKey: Record<string, CliOption> = {
  "consumer-key": { type: "string", value: "KEY", help: "the application's consumer key (client id)" },
};
const settings: Record<string, CliOption> = {
  name: { type: "string", value: "NAME", help: "client name" },
  "grant-type": {
    type: "string",
    multiple: true,
    value: "GRANT",
    help: "grant type (repeat or comma-separate): client_credentials, password, refresh_token, ...",
  },
  "callback-url": { type: "string", multiple: true, value: "URL", help: "callback URL (repeat)" },
  scope: { type: "string", multiple: true, value: "SCOPE", help: "scope the keys may ask for (repeat)" },
  "token-type": { type: "string", value: "TYPE", help: "opaque or jwt" },
};

function keyType(input: CommandInput): string {
  return enumName("KEY_TYPE", optional(input.values, "key-type") ?? "production", KEY_TYPES) as string;
}

function settingsJson(input: CommandInput): JsonObject {
  return defined({
    clientName: optional(input.values, "name"),
    grantTypes: list(input.values, "grant-type"),
    callbackUrls: list(input.values, "callback-url"),
    scopes: list(input.values, "scope"),
    tokenType: enumName("TOKEN_TYPE", optional(input.values, "token-type"), TOKEN_TYPES),
  });
}

export const applications: CommandGroup = {
  summary: "an application's OAuth keys: create, get, update, delete, map, unmap, regenerate-secret, add-secret, secrets, revoke-secret, set-owner",
  commands: {
    create: rpcCommand(KeyManagerService, "CreateApplication", {
      summary: "create the keys (consumer key and secret) of an application for one key type",
      options: {
        ...keyOptions,
        ...settings,
        owner: { type: "string", value: "SUBSCRIBER", help: "the application's owner (admins only; a store caller's own subscriber otherwise)" },
        "group-id": { type: "string", value: "GROUP", help: "the application's group" },
        "key-manager": { type: "string", value: "NAME", help: "an external key manager of the configuration (the resident one by default)" },
      },
      request: (input) => ({
        application: defined({
          applicationId: required(input.values, "app-id"),
          keyType: keyType(input),
          ...settingsJson(input),
          appOwner: optional(input.values, "owner"),
          groupId: optional(input.values, "group-id"),
          keyManager: optional(input.values, "key-manager"),
        }),
      }),
    }),
    get: rpcCommand(KeyManagerService, "RetrieveApplication", {
      summary: "an application's keys, by consumer key or by application id and key type",
      options: { ...consumerKey, ...keyOptions },
      request: (input): JsonObject => {
        const key = optional(input.values, "consumer-key");
        if (key !== undefined) return { consumerKey: key };
        if (optional(input.values, "app-id") === undefined) throw new UsageError("give --consumer-key, or --app-id and --key-type");
        return { applicationKey: { applicationId: required(input.values, "app-id"), keyType: keyType(input) } };
      },
    }),
    update: rpcCommand(KeyManagerService, "UpdateApplication", {
      summary: "change the settings of an application's keys (only those given)",
      options: { ...consumerKey, ...settings },
      request: (input) => {
        const fields = settingsJson(input);
        if (Object.keys(fields).length === 0 && input.values.data === undefined) throw new UsageError("nothing to change: give at least one setting");
        return { application: { consumerKey: required(input.values, "consumer-key"), ...fields }, updateMask: updateMask(fields) };
      },
    }),
    delete: rpcCommand(KeyManagerService, "DeleteApplication", {
      summary: "delete an application's keys and revoke their tokens",
      options: consumerKey,
      request: (input) => ({ consumerKey: required(input.values, "consumer-key") }),
    }),
    map: rpcCommand(KeyManagerService, "MapOAuthApplication", {
      summary: "map existing OAuth client credentials to an application (semi-manual mode)",
      details: "The consumer secret is read from standard input with --consumer-secret -.",
      options: {
        ...keyOptions,
        ...consumerKey,
        "consumer-secret": { type: "string", value: "SECRET|-", help: "the client's secret, or - to read it from standard input" },
        "key-manager": { type: "string", value: "NAME", help: "the key manager holding the client" },
      },
      request: async (input, context) => {
        const secret = required(input.values, "consumer-secret");
        return {
          application: defined({
            applicationId: required(input.values, "app-id"),
            keyType: keyType(input),
            consumerKey: required(input.values, "consumer-key"),
            consumerSecret: secret === "-" ? (await context.stdin()).trim() : secret,
            keyManager: optional(input.values, "key-manager"),
          }),
        };
      },
    }),
    unmap: rpcCommand(KeyManagerService, "DeleteMappedApplication", {
      summary: "remove the mapping of an application's keys (the client itself stays)",
      options: consumerKey,
      request: (input) => ({ consumerKey: required(input.values, "consumer-key") }),
    }),
    "regenerate-secret": rpcCommand(KeyManagerService, "RegenerateConsumerSecret", {
      summary: "a new consumer secret (printed once); the old one stops working",
      options: consumerKey,
      request: (input) => ({ consumerKey: required(input.values, "consumer-key") }),
    }),
    "add-secret": rpcCommand(KeyManagerService, "CreateConsumerSecret", {
      summary: "one more consumer secret (printed once) beside the others; each works until it expires or is revoked",
      options: {
        ...consumerKey,
        description: { type: "string", value: "TEXT", help: "what the secret is for" },
        "validity-seconds": { type: "string", value: "N", help: "seconds the secret works (until revoked otherwise)" },
      },
      request: (input) => {
        const seconds = optional(input.values, "validity-seconds");
        if (seconds !== undefined && !/^\d+$/.test(seconds)) throw new UsageError(`--validity-seconds ${seconds}: not a number`);
        return defined({
          secret: defined({ consumerKey: required(input.values, "consumer-key"), description: optional(input.values, "description") }),
          validityPeriodSeconds: seconds,
        });
      },
    }),
    secrets: rpcCommand(KeyManagerService, "ListConsumerSecrets", {
      summary: "the consumer secrets added to an application's keys (ids, descriptions, expiry; never the values)",
      options: { ...consumerKey, ...pagingOptions },
      request: (input) => ({ consumerKey: required(input.values, "consumer-key"), ...pagingRequest(input) }),
    }),
    "revoke-secret": rpcCommand(KeyManagerService, "RevokeConsumerSecret", {
      summary: "revoke one added consumer secret: refused at once wherever a client secret is checked",
      options: { ...consumerKey, "secret-id": { type: "string", value: "ID", help: "the secretId add-secret or secrets showed" } },
      request: (input) => ({ consumerKey: required(input.values, "consumer-key"), secretId: required(input.values, "secret-id") }),
    }),
    "set-owner": rpcCommand(KeyManagerService, "UpdateApplicationOwner", {
      summary: "give an application's keys to another owner (a store caller: only its own applications)",
      options: { ...consumerKey, owner: { type: "string", value: "SUBSCRIBER", help: "the new owner" } },
      request: (input) => ({ consumerKey: required(input.values, "consumer-key"), appOwner: required(input.values, "owner") }),
    }),
  },
};
