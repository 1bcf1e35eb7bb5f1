// Pieces both OpenAPI documents use.

/** Bearer tokens of this key manager: a system client's, from its own token endpoint. */
export const oauthSecurityScheme = {
  type: "oauth2",
  description: "A system client's token from POST /oauth2/token (client_credentials, or password to act for a user).",
  flows: {
    clientCredentials: {
      tokenUrl: "/oauth2/token",
      scopes: {
        "apim:subscribe": "the store: applications, keys and tokens",
        "km:gateway": "ValidateToken",
        "km:admin": "configuration, APIs, resources, subscriptions, users, signing keys, system clients",
      },
    },
  },
} as const;

/** The Store REST API's Error object (WSO2 reference). */
export const jsonError = {
  type: "object",
  additionalProperties: false,
  required: ["code", "message", "description", "moreInfo", "error"],
  properties: {
    code: { type: "integer", description: "The HTTP status." },
    message: { type: "string", description: "The status's name." },
    description: { type: "string", description: "What went wrong, or each refused field." },
    moreInfo: { type: "string" },
    error: {
      type: "array",
      description: "One item per refused field (400).",
      items: {
        type: "object",
        additionalProperties: false,
        required: ["code", "message"],
        properties: { code: { type: "string", description: "the field" }, message: { type: "string" } },
      },
    },
  },
} as const;
