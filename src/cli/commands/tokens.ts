// km tokens ...: issue, introspect, revoke and validate tokens.
import { KeyManagerService } from "../../../gen/keymanager/v1/key_manager_service_pb.js";
import { TokenValidationService } from "../../../gen/keymanager/v1/token_validation_service_pb.js";
import { type CommandGroup, defined, enumName, list, optional, positionalOrStdin, required } from "../command.js";
import { rpcCommand } from "../rpc.js";

const AUTH_LEVELS = ["application", "application_user", "any", "none"] as const;

export const tokens: CommandGroup = {
  summary: "access tokens: issue, introspect, revoke, validate, route",
  commands: {
    issue: rpcCommand(KeyManagerService, "GetNewApplicationAccessToken", {
      summary: "a token for an application's keys (client_credentials unless told otherwise)",
      details: "The consumer secret (and a user's password) are read from standard input when given as -.",
      options: {
        "consumer-key": { type: "string", value: "KEY", help: "the application's consumer key" },
        "consumer-secret": { type: "string", value: "SECRET|-", help: "its consumer secret, or - to read it from standard input" },
        "grant-type": { type: "string", value: "GRANT", help: "client_credentials (default), password, refresh_token" },
        scope: { type: "string", multiple: true, value: "SCOPE", help: "a scope to ask for (repeat)" },
        username: { type: "string", value: "NAME", help: "the end user (password grant)" },
        password: { type: "string", value: "PASSWORD|-", help: "the end user's password (password grant), or - for standard input" },
        "refresh-token": { type: "string", value: "TOKEN", help: "the refresh token (refresh_token grant)" },
        "validity-seconds": { type: "string", value: "N", help: "how long the token lives (the configured default otherwise)" },
      },
      request: async (input, context) => {
        const fromStdin = async (value: string | undefined) => (value === "-" ? (await context.stdin()).trim() : value);
        const validity = optional(input.values, "validity-seconds");
        return {
          request: defined({
            clientId: required(input.values, "consumer-key"),
            clientSecret: await fromStdin(required(input.values, "consumer-secret")),
            grantType: optional(input.values, "grant-type") ?? "client_credentials",
            scopes: list(input.values, "scope"),
            resourceOwnerUsername: optional(input.values, "username"),
            resourceOwnerPassword: await fromStdin(optional(input.values, "password")),
            refreshToken: optional(input.values, "refresh-token"),
            validityPeriodSeconds: validity,
          }),
        };
      },
    }),
    introspect: rpcCommand(KeyManagerService, "GetTokenMetadata", {
      summary: "what a token is: active or not, its client, user, scopes and lifetime",
      positionals: "<access_token>|-",
      request: async (input, context) => ({ accessToken: await positionalOrStdin(input, context, "the access token") }),
    }),
    revoke: rpcCommand(KeyManagerService, "RevokeToken", {
      summary: "revoke an access or refresh token (at once, on every replica)",
      positionals: "<token>|-",
      options: { "type-hint": { type: "string", value: "HINT", help: "access_token or refresh_token" } },
      request: async (input, context) =>
        defined({ token: await positionalOrStdin(input, context, "the token"), tokenTypeHint: optional(input.values, "type-hint") }),
    }),
    route: rpcCommand(KeyManagerService, "CanHandleToken", {
      summary: "which key manager handles a token, by which rule (nothing validated; km:gateway scope)",
      positionals: "<token>|-",
      options: { "key-manager": { type: "string", value: "NAME", help: "ask whether this key manager handles it" } },
      request: async (input, context) =>
        defined({ token: await positionalOrStdin(input, context, "the token"), keyManager: optional(input.values, "key-manager") }),
    }),
    validate: rpcCommand(TokenValidationService, "ValidateToken", {
      summary: "the gateway's question: may this token call this API resource? (km:gateway scope)",
      positionals: "<access_token>|-",
      options: {
        context: { type: "string", value: "PATH", help: "the API's context (e.g. /pizzashack)" },
        version: { type: "string", value: "VERSION", help: "the API's version" },
        verb: { type: "string", value: "VERB", help: "the request's HTTP method (GET by default)" },
        resource: { type: "string", value: "TEMPLATE", help: "the matched resource's URI template (e.g. /menu)" },
        path: { type: "string", value: "PATH", help: "or the request path, matched against the API's resources by the server" },
        "auth-level": { type: "string", value: "LEVEL", help: `the required auth level: ${AUTH_LEVELS.join(", ")}` },
      },
      request: async (input, context) =>
        defined({
          accessToken: await positionalOrStdin(input, context, "the access token"),
          context: required(input.values, "context"),
          version: required(input.values, "version"),
          httpVerb: (optional(input.values, "verb") ?? "GET").toUpperCase(),
          matchingResource: optional(input.values, "resource"),
          requestPath: optional(input.values, "path"),
          requiredAuthLevel: enumName("AUTH_LEVEL", optional(input.values, "auth-level"), AUTH_LEVELS),
        }),
    }),
  },
};
