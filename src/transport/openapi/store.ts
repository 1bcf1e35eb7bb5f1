// OpenAPI 3.1 description of the Store REST API (store-rest-routes.ts), served at
// GET /openapi/store.json. test/openapi.test.ts checks real answers against it.
import { KEY_STATES, KEY_TYPES } from "../../domain/model/index.js";
import { jsonError, oauthSecurityScheme } from "./shared.js";

const KEYS_PATH = "/api/am/store/v0.13/applications/{applicationId}/keys/{keyType}";

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });

const keyResponse = {
  description: "The application's keys of this type.",
  headers: {
    ETag: { description: "Strong: changes whenever the representation does; give it as If-Match to a PUT.", schema: { type: "string" } },
    "Last-Modified": { description: "When the client was last changed.", schema: { type: "string" } },
  },
  content: { "application/json": { schema: { $ref: "#/components/schemas/ApplicationKey" } } },
};

const parameters = [
  { name: "applicationId", in: "path", required: true, description: "The application's id (a UUID in WSO2 stores).", schema: { type: "string" } },
  {
    name: "keyType",
    in: "path",
    required: true,
    description: "Production or sandbox keys.",
    schema: { type: "string", enum: [...KEY_TYPES] },
  },
  {
    name: "groupId",
    in: "query",
    required: false,
    description: "Only an application of this group (404 otherwise).",
    schema: { type: "string" },
  },
];

/** The database does not answer (down, or past its deadline): nothing was changed; retry. */
const unavailable = errorResponse("The database does not answer now (down, or past its deadline); nothing changed, retry.");

export const storeOpenApi = {
  openapi: "3.1.0",
  info: {
    title: "keymanager Store REST API",
    version: "v0.13",
    description:
      "The WSO2 API Manager Store REST API (v0.13) calls for an application's keys. Callers: a system client's bearer token with scope apim:subscribe. " +
      "A caller without km:admin sees only its subscriber's or groups' applications; another's answers 404 like a missing one.",
  },
  servers: [{ url: "/", description: "the key manager's HTTP port" }],
  security: [{ oauth2: ["apim:subscribe"] }],
  paths: {
    [KEYS_PATH]: {
      parameters,
      get: {
        operationId: "getApplicationKeys",
        summary: "Get key details of a given type",
        description: "Methods other than GET and PUT are answered 405 with Allow: GET, PUT.",
        responses: {
          "200": keyResponse,
          "400": errorResponse("Bad Request: the key type or application id is malformed."),
          "401": errorResponse("No valid bearer token (WWW-Authenticate: Bearer)."),
          "403": errorResponse("The token lacks apim:subscribe."),
          "404": errorResponse("No such application, no keys of this type, or not the caller's."),
          "406": errorResponse("Accept excludes application/json."),
          "503": unavailable,
        },
      },
      put: {
        operationId: "updateApplicationKeys",
        summary: "Update grant types and callback url of an application",
        description:
          "Changes only supportedGrantTypes and callbackUrl; every other field of the body is ignored. Either may be left out (or null) to keep it; " +
          'at least one must be given. callbackUrl "" removes the callback URLs.',
        parameters: [
          {
            name: "If-Match",
            in: "header",
            required: false,
            description: "ETags of the keys read, or *; 412 when none is current.",
            schema: { type: "string" },
          },
          {
            name: "If-Unmodified-Since",
            in: "header",
            required: false,
            description: "Without If-Match: 412 when the keys changed after this time.",
            schema: { type: "string" },
          },
        ],
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/ApplicationKeyUpdate" } } } },
        responses: {
          "200": keyResponse,
          "400": errorResponse("Bad Request: a malformed body or a value refused (each in error[])."),
          "401": errorResponse("No valid bearer token."),
          "403": errorResponse("The token lacks apim:subscribe."),
          "404": errorResponse("No such application, no keys of this type, or not the caller's."),
          "406": errorResponse("Accept excludes application/json."),
          "412": errorResponse("If-Match or If-Unmodified-Since does not hold, or the keys are not COMPLETED."),
          "413": errorResponse("The body is over http.max_body_bytes."),
          "415": errorResponse("The body is not application/json."),
          "503": unavailable,
        },
      },
    },
  },
  components: {
    securitySchemes: { oauth2: oauthSecurityScheme },
    schemas: {
      ApplicationKey: {
        type: "object",
        additionalProperties: false,
        required: ["consumerKey", "consumerSecret", "supportedGrantTypes", "callbackUrl", "keyState", "keyType", "groupId"],
        properties: {
          consumerKey: { type: "string", description: "The OAuth client id." },
          consumerSecret: { type: "string", description: "The OAuth client secret." },
          supportedGrantTypes: { type: "array", items: { type: "string" } },
          callbackUrl: { type: "string", description: 'The client\'s first callback URL, "" when none.' },
          keyState: { type: "string", enum: [...KEY_STATES] },
          keyType: { type: "string", enum: [...KEY_TYPES] },
          groupId: { type: "string", description: '"" when none.' },
        },
      },
      ApplicationKeyUpdate: {
        type: "object",
        description: "An ApplicationKey; only supportedGrantTypes and callbackUrl are read.",
        properties: {
          supportedGrantTypes: { type: ["array", "null"], items: { type: "string" } },
          callbackUrl: { type: ["string", "null"] },
        },
      },
      Error: jsonError,
    },
  },
} as const;
