import type * as http from "node:http";
import type { Config } from "../config/config.js";
import type { SigningKeys } from "../oauth/signing-keys.js";
import { parseScopeParameter } from "../oauth/scopes.js";
import { emptyTokenRequest } from "../oauth/token-request.js";
import { SUPPORTED_GRANTS, type TokenService } from "../oauth/token-service.js";
import type { TokenRecord } from "../domain/model/index.js";
import type { ClientAddresses } from "./client-address.js";
import type { AuditLog } from "./audit-log.js";
import { asDomainError } from "./error-mapping.js";
import { noteCaller } from "../observability/access-log.js";
import { hashToken } from "../oauth/token-hash.js";
import type { UserInfo } from "../oauth/user-info.js";
import { OIDC_SCOPES } from "../oauth/user-claims.js";
import { requestAddress, sendJson, type RouteHandler } from "./http-server.js";

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" };

interface Deps {
  tokens: TokenService;
  keys: SigningKeys;
  config: () => Config;
  addresses: ClientAddresses;
  /** Largest form body. */
  maxFormBytes: number;
  /** Tokens issued and revoked here are changes: audited as the RPCs' are. */
  audit: AuditLog;
  userInfo: UserInfo;
}

/**
 * RFC-shaped OAuth2 endpoints on the HTTP port: token (RFC 6749), introspection (RFC 7662),
 * revocation (RFC 7009), JWKS and authorization-server metadata (RFC 8414).
 */
export function oauthRoutes(deps: Deps): RouteHandler {
  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if ((path === "/.well-known/oauth-authorization-server" || path === "/.well-known/openid-configuration") && req.method === "GET") {
      sendJson(res, 200, metadata(deps.config()));
      return true;
    }
    if (path === "/oauth2/userinfo") {
      await userInfo(deps, req, res);
      return true;
    }
    if (path === "/oauth2/jwks" && req.method === "GET") {
      sendJson(res, 200, deps.keys.jwks(), { "cache-control": "public, max-age=300" });
      return true;
    }
    const endpoint = { "/oauth2/token": token, "/oauth2/introspect": introspect, "/oauth2/revoke": revoke }[path ?? ""];
    if (!endpoint) return false;
    if (req.method !== "POST") {
      sendJson(res, 405, { error: "invalid_request", error_description: "use POST" }, { allow: "POST" });
      return true;
    }
    try {
      const form = await readForm(req, deps.maxFormBytes);
      await endpoint(deps, req, res, form);
    } catch (err) {
      sendOAuthError(req, res, err);
    }
    return true;
  };
}

async function token(deps: Deps, req: http.IncomingMessage, res: http.ServerResponse, form: URLSearchParams): Promise<void> {
  const client = clientCredentials(req, form);
  const validity = form.get("validity_period");
  const request = {
    ...emptyTokenRequest(),
    ...client,
    grantType: form.get("grant_type") ?? "",
    scopes: parseScopeParameter(form.get("scope") ?? undefined),
    callbackUri: form.get("redirect_uri") ?? "",
    resourceOwnerUsername: form.get("username") ?? "",
    resourceOwnerPassword: form.get("password") ?? "",
    refreshToken: form.get("refresh_token") ?? "",
    validityPeriodSeconds: validity && /^\d{1,12}$/.test(validity) ? Number(validity) : 0,
    requestParameters: grantParameters(form),
  };
  const issued = await deps.tokens.issue(request, requestAddress(req, deps.addresses));
  const { record } = issued;
  noteCaller(req, request.clientId);
  deps.audit.changeBy(request.clientId, "POST /oauth2/token", {
    grantType: request.grantType,
    consumerKey: record.consumerKey,
    username: record.endUser || undefined,
    tokenRef: record.tokenHash.slice(0, 12),
  });
  sendJson(
    res,
    200,
    {
      access_token: issued.accessToken,
      token_type: "Bearer",
      expires_in: Math.round((record.expiresAt.getTime() - record.issuedAt.getTime()) / 1000),
      scope: record.scopes.join(" "),
      ...(issued.refreshToken ? { refresh_token: issued.refreshToken } : {}),
      ...(issued.idToken ? { id_token: issued.idToken } : {}),
      ...(issued.issuedTokenType ? { issued_token_type: issued.issuedTokenType } : {}),
    },
    NO_STORE,
  );
}

async function introspect(deps: Deps, req: http.IncomingMessage, res: http.ServerResponse, form: URLSearchParams): Promise<void> {
  const { clientId, clientSecret } = clientCredentials(req, form);
  const caller = await deps.tokens.authenticateClient(clientId, clientSecret, requestAddress(req, deps.addresses));
  noteCaller(req, clientId);
  const record = await deps.tokens.introspect(caller, form.get("token") ?? "");
  sendJson(res, 200, record ? activeToken(record, deps.config().issuer) : { active: false }, NO_STORE);
}

async function revoke(deps: Deps, req: http.IncomingMessage, res: http.ServerResponse, form: URLSearchParams): Promise<void> {
  const { clientId, clientSecret } = clientCredentials(req, form);
  const client = await deps.tokens.authenticateClient(clientId, clientSecret, requestAddress(req, deps.addresses));
  noteCaller(req, clientId);
  const value = form.get("token");
  if (!value) throw new OAuthRequestError("token is required");
  await deps.tokens.revoke(value, { tokenTypeHint: form.get("token_type_hint") ?? undefined, consumerKey: client.consumerKey });
  // RFC 7009: an unknown token or another client's is answered 200 too; the audit line says what was asked.
  deps.audit.changeBy(clientId, "POST /oauth2/revoke", { consumerKey: client.consumerKey, tokenRef: hashToken(value).slice(0, 12) });
  res.writeHead(200, NO_STORE).end();
}

/** Parameters of the JWT bearer grant (RFC 7523) and token exchange (RFC 8693), as given. */
const GRANT_PARAMETERS = [
  // The authorization_code grant's (RFC 6749 section 4.1.3, RFC 7636 section 4.5).
  "code",
  "code_verifier",
  // JWT bearer (RFC 7523) and token exchange (RFC 8693).
  "assertion",
  "subject_token",
  "subject_token_type",
  "actor_token",
  "actor_token_type",
  "requested_token_type",
  "audience",
  "resource",
] as const;

function grantParameters(form: URLSearchParams): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const name of GRANT_PARAMETERS) {
    const value = form.get(name);
    if (value !== null) parameters[name] = value;
  }
  return parameters;
}

function activeToken(r: TokenRecord, issuer: string) {
  return {
    active: true,
    scope: r.scopes.join(" "),
    client_id: r.consumerKey,
    ...(r.endUser ? { username: r.endUser } : {}),
    token_type: "Bearer",
    exp: Math.floor(r.expiresAt.getTime() / 1000),
    iat: Math.floor(r.issuedAt.getTime() / 1000),
    sub: r.endUser || r.consumerKey,
    aud: r.consumerKey,
    iss: issuer,
    jti: r.id,
  };
}

/**
 * OpenID Connect UserInfo (Core 5.3), GET or POST with the access token as a Bearer token (RFC
 * 6750 2.1): the user's claims its scopes give. Errors as RFC 6750 3 says, in WWW-Authenticate.
 */
async function userInfo(deps: Deps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  if (req.method !== "GET" && req.method !== "POST") {
    sendJson(res, 405, { error: "invalid_request", error_description: "use GET or POST" }, { allow: "GET, POST" });
    return;
  }
  const header = req.headers.authorization ?? "";
  const token = /^Bearer [A-Za-z0-9\-._~+/]+=*$/.test(header) ? header.slice(7) : "";
  const challenge = (error: string, description: string) => `Bearer realm="oauth2", error="${error}", error_description="${description}"`;
  if (token === "") {
    sendJson(
      res,
      401,
      { error: "invalid_token", error_description: "a Bearer access token is required" },
      { ...NO_STORE, "www-authenticate": 'Bearer realm="oauth2"' },
    );
    return;
  }
  try {
    sendJson(res, 200, await deps.userInfo.claims(token), NO_STORE);
  } catch (err) {
    const e = asDomainError(err);
    if (e?.kind === "unauthenticated") {
      sendJson(res, 401, { error: "invalid_token", error_description: e.message }, { ...NO_STORE, "www-authenticate": challenge("invalid_token", e.message) });
    } else if (e?.kind === "permission_denied") {
      sendJson(
        res,
        403,
        { error: "insufficient_scope", error_description: e.message },
        { ...NO_STORE, "www-authenticate": challenge("insufficient_scope", e.message) },
      );
    } else throw err;
  }
}

/** RFC 8414 metadata, with OpenID Connect Discovery 1.0's members: one document at both well-known paths. */
function metadata(config: Config) {
  return {
    issuer: config.issuer,
    token_endpoint: config.endpoints.token,
    introspection_endpoint: config.endpoints.introspect,
    revocation_endpoint: config.endpoints.revoke,
    jwks_uri: config.endpoints.jwks,
    authorization_endpoint: `${config.issuer}/oauth2/authorize`,
    grant_types_supported: SUPPORTED_GRANTS,
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    code_challenge_methods_supported: ["S256"],
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    userinfo_endpoint: `${config.issuer}/oauth2/userinfo`,
    scopes_supported: [...OIDC_SCOPES],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [config.jwtAlgorithm],
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "name", "email", "roles"],
  };
}

class OAuthRequestError extends Error {}

/** A form body that could not be read: not form-encoded, too large, a repeated field. */
export class FormError extends OAuthRequestError {}

/** client_secret_basic (RFC 6749 2.3.1, form-encoded parts) or client_secret_post; not both. */
function clientCredentials(req: http.IncomingMessage, form: URLSearchParams): { clientId: string; clientSecret: string } {
  const header = req.headers.authorization;
  if (header?.startsWith("Basic ")) {
    if (form.has("client_secret")) throw new OAuthRequestError("use one client authentication method");
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return { clientId: "", clientSecret: "" };
    try {
      return {
        clientId: decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, " ")),
        clientSecret: decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, " ")),
      };
    } catch {
      return { clientId: "", clientSecret: "" };
    }
  }
  return { clientId: form.get("client_id") ?? "", clientSecret: form.get("client_secret") ?? "" };
}

export async function readForm(req: http.IncomingMessage, maxBytes: number): Promise<URLSearchParams> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") throw new FormError("the body must be application/x-www-form-urlencoded");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new FormError("the body is too large");
    chunks.push(chunk as Buffer);
  }
  const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
  for (const key of new Set(form.keys())) {
    if (form.getAll(key).length > 1) throw new FormError(`${key} is repeated`);
  }
  return form;
}

const STATUS: Record<string, number> = {
  invalid_client: 401,
  invalid_request: 400,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  temporarily_unavailable: 503,
};

function sendOAuthError(req: http.IncomingMessage, res: http.ServerResponse, cause: unknown): void {
  if (cause instanceof OAuthRequestError) {
    sendJson(res, 400, { error: "invalid_request", error_description: cause.message }, NO_STORE);
    return;
  }
  const err = asDomainError(cause);
  if (err) {
    if (err.kind === "unavailable") {
      // RFC 6749 section 4.1.2.1's temporarily_unavailable, with the status it stands for.
      sendJson(res, 503, { error: "temporarily_unavailable", error_description: err.message }, { ...NO_STORE, "retry-after": "1" });
      return;
    }
    const error = err.oauth ?? (err.kind === "unauthenticated" ? "invalid_client" : "invalid_request");
    // A paused client id (too many failed authentications) is told to come back later.
    const status = err.kind === "resource_exhausted" ? 429 : (STATUS[error] ?? 400);
    const challenge: Record<string, string> =
      status === 401 && req.headers.authorization?.startsWith("Basic ") ? { "www-authenticate": 'Basic realm="oauth2"' } : {};
    sendJson(res, status, { error, error_description: err.message }, { ...NO_STORE, ...challenge });
    return;
  }
  throw cause;
}
