// km users ..., km clients ..., km signing-keys ...: the service's own principals and keys.
import { SigningKeyService } from "../../../gen/keymanager/v1/signing_key_service_pb.js";
import { SystemClientService } from "../../../gen/keymanager/v1/system_client_service_pb.js";
import { UserService } from "../../../gen/keymanager/v1/user_service_pb.js";
import { type CliContext, type CliOption, type CommandGroup, type CommandInput, defined, list, optional, required } from "../command.js";
import { rpcCommand } from "../rpc.js";
import { pagingOptions, pagingRequest } from "./paging.js";

const username: Record<string, CliOption> = { username: { type: "string", value: "NAME", help: "the user's name" } };
const password: Record<string, CliOption> = {
  password: { type: "string", value: "PASSWORD|-", help: "the password, or - to read it from standard input (kept out of the process list)" },
};

async function passwordOf(input: CommandInput, context: CliContext): Promise<string> {
  const value = required(input.values, "password");
  return value === "-" ? (await context.stdin()).replace(/\r?\n$/, "") : value;
}

export const users: CommandGroup = {
  summary: "end users of the password grant: create, get, list, set-password, delete",
  commands: {
    create: rpcCommand(UserService, "CreateUser", {
      summary: "create a user",
      options: { ...username, ...password },
      request: async (input, context) => ({ user: { username: required(input.values, "username") }, password: await passwordOf(input, context) }),
    }),
    get: rpcCommand(UserService, "GetUser", {
      summary: "one user",
      options: username,
      request: (input) => ({ username: required(input.values, "username") }),
    }),
    list: rpcCommand(UserService, "ListUsers", {
      summary: "users, a page at a time",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    "set-password": rpcCommand(UserService, "SetUserPassword", {
      summary: "a user's new password",
      options: { ...username, ...password },
      request: async (input, context) => ({ username: required(input.values, "username"), password: await passwordOf(input, context) }),
    }),
    delete: rpcCommand(UserService, "DeleteUser", {
      summary: "delete a user and revoke their tokens",
      options: username,
      request: (input) => ({ username: required(input.values, "username") }),
    }),
  },
};

const clientId: Record<string, CliOption> = { id: { type: "string", value: "ID", help: "the system client's id" } };

export const clients: CommandGroup = {
  summary: "system clients, the callers of this service: create, get, list, regenerate-secret, delete",
  commands: {
    create: rpcCommand(SystemClientService, "CreateSystemClient", {
      summary: "a new system client; its secret is printed once",
      options: {
        name: { type: "string", value: "NAME", help: "what it is (e.g. 'gateway eu-1')" },
        scope: { type: "string", multiple: true, value: "SCOPE", help: "km:admin, apim:subscribe, km:gateway (repeat)" },
        subscriber: { type: "string", value: "NAME", help: "the subscriber a store client acts for" },
        "group-id": { type: "string", multiple: true, value: "GROUP", help: "a group whose applications it may manage (repeat)" },
      },
      request: (input) => ({
        systemClient: defined({
          name: required(input.values, "name"),
          scopes: list(input.values, "scope"),
          subscriber: optional(input.values, "subscriber"),
          groupIds: list(input.values, "group-id"),
        }),
      }),
    }),
    get: rpcCommand(SystemClientService, "GetSystemClient", {
      summary: "one system client",
      options: clientId,
      request: (input) => ({ clientId: required(input.values, "id") }),
    }),
    list: rpcCommand(SystemClientService, "ListSystemClients", {
      summary: "system clients, a page at a time",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    "regenerate-secret": rpcCommand(SystemClientService, "RegenerateSystemClientSecret", {
      summary: "a new secret (printed once); the old one and its tokens stop working",
      options: clientId,
      request: (input) => ({ clientId: required(input.values, "id") }),
    }),
    delete: rpcCommand(SystemClientService, "DeleteSystemClient", {
      summary: "delete a system client; its tokens stop working at once",
      options: clientId,
      request: (input) => ({ clientId: required(input.values, "id") }),
    }),
  },
};

export const signingKeys: CommandGroup = {
  summary: "the keys JWT access tokens are signed with: list, rotate",
  commands: {
    list: rpcCommand(SigningKeyService, "ListSigningKeys", {
      summary: "signing keys, the active one first (public parts only)",
      options: pagingOptions,
      request: (input) => pagingRequest(input),
    }),
    rotate: rpcCommand(SigningKeyService, "RotateSigningKey", {
      summary: "a new signing key for new tokens; the old one keeps verifying those it signed",
    }),
  },
};
