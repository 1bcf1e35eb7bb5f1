import {
  FailedPreconditionError,
  InvalidArgumentError,
  PermissionDeniedError,
  UnauthenticatedError,
  UnavailableError,
  UnimplementedError,
} from "../../domain/errors.js";
import type { AccessTokenRequest } from "../../domain/model/index.js";
import type { EndpointResolver } from "./endpoints.js";
import { basicAuth, fields, type OAuth2HttpClient, str } from "./http-client.js";

export interface IssuedToken {
  accessToken: string;
  refreshToken: string;
  expiresInSeconds: number;
  scopes: string[];
}

/** RFC 7662: what the server says of a token. */
export interface Introspection {
  active: boolean;
  clientId: string;
  username: string;
  subject: string;
  scopes: string[];
  /** Epoch seconds; 0 when not given. */
  issuedAt: number;
  expiresAt: number;
  tokenId: string;
}

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

/** The token (RFC 6749), introspection (RFC 7662) and revocation (RFC 7009) endpoints of one server. */
export class TokenEndpoints {
  constructor(
    private readonly keyManager: string,
    private readonly http: OAuth2HttpClient,
    private readonly endpoints: EndpointResolver,
    private readonly serviceCredentials: ClientCredentials | undefined,
  ) {}

  /** Not retried: a second request would issue (or rotate) a second token. */
  async token(request: AccessTokenRequest): Promise<IssuedToken> {
    const form: Record<string, string> = { grant_type: request.grantType, ...request.requestParameters };
    if (request.scopes.length > 0) form.scope = request.scopes.join(" ");
    if (request.resourceOwnerUsername) form.username = request.resourceOwnerUsername;
    if (request.resourceOwnerPassword) form.password = request.resourceOwnerPassword;
    if (request.refreshToken) form.refresh_token = request.refreshToken;
    if (request.callbackUri) form.redirect_uri = request.callbackUri;
    const url = await this.endpoints.get("token");
    const headers = { authorization: basicAuth(request.clientId, request.clientSecret) };
    const { status, body } = await this.http.send({ method: "POST", url, headers, form, idempotent: false });
    const f = fields(body);
    if (status !== 200 || str(f.access_token) === "") throw tokenError(this.keyManager, status, str(f.error), request.grantType);
    return {
      accessToken: str(f.access_token),
      refreshToken: str(f.refresh_token),
      expiresInSeconds: typeof f.expires_in === "number" ? f.expires_in : Number(f.expires_in ?? 0),
      scopes: str(f.scope)
        .split(" ")
        .filter((s) => s !== ""),
    };
  }

  /** Authenticated as this service's own client at the server. */
  async introspect(token: string): Promise<Introspection> {
    const url = await this.endpoints.get("introspection");
    const { status, body } = await this.http.send({ method: "POST", url, headers: this.serviceAuth(), form: { token }, idempotent: true });
    // This service cannot use the key manager (its own credentials refused, say): to the gateway,
    // as to the store, the key manager is not available.
    if (status !== 200) throw new UnavailableError(`key manager "${this.keyManager}" is not available: introspection refused (HTTP ${status})`);
    const f = fields(body);
    return {
      active: f.active === true,
      clientId: str(f.client_id),
      username: str(f.username),
      subject: str(f.sub),
      scopes: str(f.scope)
        .split(" ")
        .filter((s) => s !== ""),
      issuedAt: typeof f.iat === "number" ? f.iat : 0,
      expiresAt: typeof f.exp === "number" ? f.exp : 0,
      tokenId: str(f.jti),
    };
  }

  /**
   * RFC 7009 asks the client the token was issued to: its credentials when known, else this
   * service's own. Revoking an unknown or already revoked token is not an error (200).
   */
  async revoke(token: string, tokenTypeHint: string, owner: ClientCredentials | undefined): Promise<void> {
    const url = await this.endpoints.get("revocation");
    const form: Record<string, string> = { token, ...(tokenTypeHint ? { token_type_hint: tokenTypeHint } : {}) };
    const headers = owner ? { authorization: basicAuth(owner.clientId, owner.clientSecret) } : this.serviceAuth();
    const { status, body } = await this.http.send({ method: "POST", url, headers, form, idempotent: true });
    if (status === 200) return;
    const error = str(fields(body).error);
    // RFC 7009 section 2.2.1: e.g. self-contained JWTs the server cannot take back.
    if (error === "unsupported_token_type") throw new FailedPreconditionError(`key manager "${this.keyManager}" does not revoke tokens of this type`);
    throw new PermissionDeniedError(`key manager "${this.keyManager}" refused the revocation: HTTP ${status} ${error}`.trim());
  }

  private serviceAuth(): Record<string, string> {
    if (!this.serviceCredentials) return {};
    return { authorization: basicAuth(this.serviceCredentials.clientId, this.serviceCredentials.clientSecret) };
  }
}

/** RFC 6749 section 5.2 errors as the domain's, as the resident token service raises them. */
function tokenError(keyManager: string, status: number, error: string, grantType: string): Error {
  switch (error) {
    case "invalid_client":
      return new UnauthenticatedError("client authentication failed", { oauth: "invalid_client" });
    case "unsupported_grant_type":
      return new UnimplementedError(`the ${grantType} grant is not supported by key manager "${keyManager}"`, { oauth: "unsupported_grant_type" });
    case "unauthorized_client":
      return new PermissionDeniedError(`the client may not use the ${grantType} grant`, { oauth: "unauthorized_client" });
    case "invalid_scope":
      return new InvalidArgumentError([{ field: "scopes", description: `refused by key manager "${keyManager}"` }], { oauth: "invalid_scope" });
    case "invalid_grant":
      return new InvalidArgumentError([{ field: "grant_type", description: `the grant was refused by key manager "${keyManager}"` }], {
        oauth: "invalid_grant",
      });
    default:
      return new InvalidArgumentError(
        [{ field: "request", description: `refused by key manager "${keyManager}" (HTTP ${status}${error ? ` ${error}` : ""})` }],
        { oauth: "invalid_request" },
      );
  }
}
