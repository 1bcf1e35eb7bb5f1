// OpenAPI 3.1 description of the OAuth2 endpoints (oauth-routes.ts), /healthz and /livez, served at
// GET /openapi/oauth2.json. test/openapi.test.ts checks real answers against it.

const form = (schema: object) => ({ required: true, content: { "application/x-www-form-urlencoded": { schema } } });
const json = (description: string, ref: string, headers: object = {}) => ({
  description,
  headers,
  content: { "application/json": { schema: { $ref: `#/components/schemas/${ref}` } } },
});
const oauthError = (description: string) => json(description, "OAuthError");
const noStore = { "Cache-Control": { description: "no-store", schema: { type: "string" } } };

const clientAuthFields = {
  client_id: { type: "string", description: "client_secret_post (or HTTP Basic: client_secret_basic, not both)" },
  client_secret: { type: "string" },
};

const clientErrors = {
  "400": oauthError(
    "invalid_request, invalid_grant, unauthorized_client, unsupported_grant_type or invalid_scope (RFC 6749 5.2); invalid_target (token exchange, RFC 8693 2.2.2).",
  ),
  "401": oauthError("invalid_client: unknown client or wrong secret (WWW-Authenticate: Basic with HTTP Basic)."),
  "429": oauthError("Too many failed authentications for this client id from this address: retry in N s."),
  "503": json(
    "temporarily_unavailable: the database does not answer now (down, or past its deadline), or a trusted issuer's JWKS cannot be fetched within its timeout; retry (Retry-After).",
    "OAuthError",
    {
      ...noStore,
      "Retry-After": { description: "seconds", schema: { type: "string" } },
    },
  ),
};

const html = (description: string, headers: object = {}) => ({
  description,
  headers: { "Content-Security-Policy": { description: "default-src 'none'; no script", schema: { type: "string" } }, ...headers },
  content: { "text/html": { schema: { type: "string", description: "a server-rendered page (no script)" } } },
});
const location = (description: string) => ({
  description,
  headers: { Location: { description: "the client's redirect URI with code and state, or error, error_description and state", schema: { type: "string" } } },
});
const pageForm = {
  csrf_token: { type: "string", description: "the anti-CSRF token of the page the form came from" },
  request: { type: "string", description: "the authorization request's query string, as the page carried it" },
};

export const oauth2OpenApi = {
  openapi: "3.1.0",
  info: {
    title: "keymanager OAuth2 endpoints",
    version: "1",
    description:
      "RFC 6749 token endpoint, RFC 7662 introspection, RFC 7009 revocation, the JWKS of JWT access tokens, RFC 8414 metadata, and the health check. " +
      "Clients authenticate with client_secret_basic or client_secret_post; public clients (token_endpoint_auth_method none) send only client_id. " +
      "Token, introspection and revocation take POST only (405 with Allow: POST). " +
      "The authorization endpoint (RFC 6749 4.1 with PKCE S256, RFC 7636) serves HTML pages to the user's browser: login, consent, errors, logout. " +
      "OpenID Connect: the openid scope gives an id_token; /oauth2/userinfo and /.well-known/openid-configuration.",
  },
  servers: [{ url: "/", description: "the key manager's HTTP port" }],
  paths: {
    "/oauth2/token": {
      post: {
        operationId: "token",
        summary: "Issue an access token (authorization_code, client_credentials, password, refresh_token, JWT bearer RFC 7523, token exchange RFC 8693)",
        requestBody: form({
          type: "object",
          required: ["grant_type"],
          properties: {
            grant_type: {
              type: "string",
              enum: [
                "authorization_code",
                "client_credentials",
                "password",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "urn:ietf:params:oauth:grant-type:token-exchange",
              ],
            },
            code: { type: "string", description: "authorization_code grant: the code the authorization endpoint gave" },
            code_verifier: { type: "string", description: "authorization_code grant: the PKCE verifier of the request's code_challenge" },
            scope: { type: "string", description: "space-separated; none: all of the client's" },
            username: { type: "string", description: "password grant" },
            password: { type: "string", description: "password grant" },
            refresh_token: { type: "string", description: "refresh_token grant" },
            validity_period: { type: "string", description: "seconds, capped by the configuration" },
            redirect_uri: { type: "string", description: "authorization_code grant: the authorization request's, when it named one" },
            assertion: {
              type: "string",
              description: "jwt-bearer: a JWT of a trusted issuer (TrustedIssuerService), for this key manager (aud), used once (jti)",
            },
            subject_token: {
              type: "string",
              description: "token exchange: a JWT of a trusted issuer, or a user token this key manager issued to the same client",
            },
            subject_token_type: { type: "string", enum: ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"] },
            actor_token: { type: "string", description: "token exchange: who acts for the subject (a JWT access token's act claim)" },
            actor_token_type: { type: "string", enum: ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"] },
            requested_token_type: {
              type: "string",
              enum: ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"],
              description: "token exchange: jwt gives a JWT access token whatever the client's token type",
            },
            audience: {
              type: "string",
              description: "token exchange: this key manager's issuer or token endpoint, the client's id, or an API id registered here",
            },
            resource: { type: "string", description: "token exchange: an absolute URI under this key manager's issuer" },
            ...clientAuthFields,
          },
        }),
        responses: { "200": json("The token (RFC 6749 5.1).", "TokenResponse", noStore), ...clientErrors },
      },
    },
    "/oauth2/introspect": {
      post: {
        operationId: "introspect",
        summary: "What a token is (RFC 7662); only the client it was issued to learns more than active: false",
        requestBody: form({
          type: "object",
          required: ["token"],
          properties: { token: { type: "string" }, token_type_hint: { type: "string" }, ...clientAuthFields },
        }),
        responses: { "200": json("active, and when active its details.", "Introspection", noStore), ...clientErrors },
      },
    },
    "/oauth2/revoke": {
      post: {
        operationId: "revoke",
        summary: "Revoke an access or refresh token of the calling client (RFC 7009); unknown tokens are fine",
        requestBody: form({
          type: "object",
          required: ["token"],
          properties: { token: { type: "string" }, token_type_hint: { type: "string", enum: ["access_token", "refresh_token"] }, ...clientAuthFields },
        }),
        responses: { "200": { description: "Revoked (or nothing to revoke); no body.", headers: noStore }, ...clientErrors },
      },
    },
    "/oauth2/authorize": {
      get: {
        operationId: "authorize",
        summary: "The authorization endpoint (RFC 6749 4.1): the login or consent page, or a redirect to the client",
        parameters: [
          ["response_type", true, "code"],
          ["client_id", true, "the client's consumer key"],
          ["redirect_uri", false, "one of the client's callback URLs, exactly; required when it registered several"],
          ["scope", false, "space-separated"],
          ["state", false, "given back with the answer"],
          ["code_challenge", false, "PKCE S256 challenge; required for public clients and, unless [authorization] require_pkce = false, for all"],
          ["code_challenge_method", false, "S256"],
          ["nonce", false, "OpenID Connect"],
          ["prompt", false, "none, login or consent"],
        ].map(([name, required, description]) => ({ name, in: "query", required, description, schema: { type: "string" } })),
        responses: {
          "200": html("The login page, or (signed in) the consent page."),
          "302": location("The code (signed in and consented before), or an error once the redirect URI is trusted (RFC 6749 4.1.2.1)."),
          "400": html("The request cannot be answered at a registered redirect URI: unknown client, redirect_uri not registered."),
        },
      },
      post: {
        operationId: "authorizeForm",
        summary: "The login and consent pages' forms",
        requestBody: form({
          type: "object",
          required: ["csrf_token", "request", "action"],
          properties: {
            ...pageForm,
            action: { enum: ["login", "consent", "deny"] },
            username: { type: "string", description: "action login" },
            password: { type: "string", description: "action login" },
          },
        }),
        responses: {
          "200": html("The consent page after a login, or the login page when the session ended."),
          "303": location("The code after consent (or after a login when consent was given before), or access_denied."),
          "400": html("Not a form (application/x-www-form-urlencoded), too large, or an unknown action; or the request's redirect URI is not trusted."),
          "401": html("The login page again: wrong username or password."),
          "403": html("The anti-CSRF token is missing or not this browser's."),
          "429": html("The login page: too many failed logins for this username from this address (the client secrets' throttle).", {
            "Retry-After": { description: "seconds", schema: { type: "string" } },
          }),
        },
      },
    },
    "/oauth2/logout": {
      get: { operationId: "logoutPage", summary: "The sign-out page (a form)", responses: { "200": html("The page.") } },
      post: {
        operationId: "logout",
        summary: "Ends the browser's session",
        requestBody: form({ type: "object", required: ["csrf_token"], properties: { csrf_token: pageForm.csrf_token } }),
        responses: { "200": html("Signed out."), "400": html("Not a form."), "403": html("The anti-CSRF token is missing or not this browser's.") },
      },
    },
    "/oauth2/jwks": {
      get: {
        operationId: "jwks",
        summary: "The public keys JWT access tokens are signed with (RFC 7517)",
        responses: { "200": json("The key set.", "Jwks") },
      },
    },
    "/.well-known/oauth-authorization-server": {
      get: {
        operationId: "metadata",
        summary: "Authorization server metadata (RFC 8414)",
        responses: { "200": json("The metadata.", "Metadata") },
      },
    },
    "/.well-known/openid-configuration": {
      get: {
        operationId: "openidConfiguration",
        summary: "OpenID Connect Discovery 1.0: the same document as the RFC 8414 metadata",
        responses: { "200": json("The metadata.", "Metadata") },
      },
    },
    "/oauth2/userinfo": {
      get: {
        operationId: "userinfo",
        summary: "OpenID Connect UserInfo: the claims of the access token's user its scopes give (Authorization: Bearer; POST alike)",
        responses: {
          "200": json("sub, and name (profile), email (email), roles (roles) when the user has them.", "UserInfo", noStore),
          "401": json("invalid_token: no Bearer token, or not an active one of this server (WWW-Authenticate: Bearer).", "OAuthError", {
            "WWW-Authenticate": { description: "Bearer, with error", schema: { type: "string" } },
          }),
          "403": json("insufficient_scope: the token was not issued with openid.", "OAuthError", {
            "WWW-Authenticate": { description: "Bearer, with error", schema: { type: "string" } },
          }),
        },
      },
    },
    "/healthz": {
      get: {
        operationId: "health",
        summary: "Whether the server takes calls (no token)",
        responses: {
          "200": json("Ready: serving, and the database answers.", "Health"),
          "503": json("Not ready (NOT_SERVING): starting, stopping, or the database does not answer.", "Health"),
        },
      },
    },
    "/livez": {
      get: {
        operationId: "liveness",
        summary: "Whether the process runs (no token; says nothing of the database)",
        responses: { "200": json("Alive.", "Health") },
      },
    },
  },
  components: {
    schemas: {
      TokenResponse: {
        type: "object",
        additionalProperties: false,
        required: ["access_token", "token_type", "expires_in", "scope"],
        properties: {
          access_token: { type: "string" },
          token_type: { const: "Bearer" },
          expires_in: { type: "integer", minimum: 0, description: "seconds" },
          scope: { type: "string", description: "space-separated" },
          refresh_token: { type: "string", description: "authorization_code, password and refresh_token grants, when the client may refresh" },
          id_token: { type: "string", description: "OpenID Connect: authorization_code grant of a request with the openid scope" },
          issued_token_type: {
            enum: ["urn:ietf:params:oauth:token-type:access_token", "urn:ietf:params:oauth:token-type:jwt"],
            description: "token exchange (RFC 8693 2.2.1)",
          },
        },
      },
      Introspection: {
        oneOf: [
          { type: "object", additionalProperties: false, required: ["active"], properties: { active: { const: false } } },
          {
            type: "object",
            additionalProperties: false,
            required: ["active", "scope", "client_id", "token_type", "exp", "iat", "sub", "aud", "iss", "jti"],
            properties: {
              active: { const: true },
              scope: { type: "string" },
              client_id: { type: "string" },
              username: { type: "string", description: "the end user (password grant)" },
              token_type: { const: "Bearer" },
              exp: { type: "integer" },
              iat: { type: "integer" },
              sub: { type: "string" },
              aud: { type: "string" },
              iss: { type: "string" },
              jti: { type: "string" },
            },
          },
        ],
      },
      Jwks: {
        type: "object",
        additionalProperties: false,
        required: ["keys"],
        properties: {
          keys: {
            type: "array",
            items: {
              type: "object",
              required: ["kty", "kid"],
              properties: {
                kty: { enum: ["EC", "RSA"] },
                kid: { type: "string" },
                alg: { enum: ["ES256", "RS256"] },
                use: { const: "sig" },
                crv: { type: "string" },
                x: { type: "string" },
                y: { type: "string" },
                n: { type: "string" },
                e: { type: "string" },
              },
              not: { anyOf: [{ required: ["d"] }, { required: ["p"] }, { required: ["q"] }] },
            },
          },
        },
      },
      Metadata: {
        type: "object",
        additionalProperties: false,
        required: ["issuer", "token_endpoint", "introspection_endpoint", "revocation_endpoint", "jwks_uri", "grant_types_supported"],
        properties: {
          issuer: { type: "string" },
          token_endpoint: { type: "string" },
          introspection_endpoint: { type: "string" },
          revocation_endpoint: { type: "string" },
          jwks_uri: { type: "string" },
          authorization_endpoint: { type: "string" },
          grant_types_supported: { type: "array", items: { type: "string" } },
          response_types_supported: { type: "array", items: { type: "string" } },
          response_modes_supported: { type: "array", items: { type: "string" } },
          code_challenge_methods_supported: { type: "array", items: { const: "S256" } },
          token_endpoint_auth_methods_supported: { type: "array", items: { type: "string" } },
          introspection_endpoint_auth_methods_supported: { type: "array", items: { type: "string" } },
          revocation_endpoint_auth_methods_supported: { type: "array", items: { type: "string" } },
          userinfo_endpoint: { type: "string" },
          scopes_supported: { type: "array", items: { type: "string" } },
          subject_types_supported: { type: "array", items: { const: "public" } },
          id_token_signing_alg_values_supported: { type: "array", items: { enum: ["ES256", "RS256"] } },
          claims_supported: { type: "array", items: { type: "string" } },
        },
      },
      UserInfo: {
        type: "object",
        additionalProperties: false,
        required: ["sub"],
        properties: {
          sub: { type: "string", description: "the username" },
          name: { type: "string" },
          email: { type: "string" },
          roles: { type: "array", items: { type: "string" } },
        },
      },
      OAuthError: {
        type: "object",
        additionalProperties: false,
        required: ["error", "error_description"],
        properties: { error: { type: "string" }, error_description: { type: "string" } },
      },
      Health: {
        type: "object",
        additionalProperties: false,
        required: ["status"],
        properties: { status: { enum: ["SERVING", "NOT_SERVING"] } },
      },
    },
  },
} as const;
