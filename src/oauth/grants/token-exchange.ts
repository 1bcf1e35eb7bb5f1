import { randomUUID } from "node:crypto";
import type { JWTPayload } from "jose";
import type { Config } from "../../config/config.js";
import type { Clock } from "../../domain/clock.js";
import { InvalidArgumentError, NotFoundError } from "../../domain/errors.js";
import { type AccessTokenRequest, isActive, type OAuthClient, type TokenRecord } from "../../domain/model/index.js";
import type { Store } from "../../storage/store.js";
import type { IssuerJwts } from "../issuer-jwts.js";
import { narrowScopes } from "../scopes.js";
import type { GrantOutcome } from "./grant-outcome.js";
import { scopesFromIssuerJwt, scopesOrRefusal } from "./issuer-scopes.js";

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

/** RFC 8693 section 3: the token type identifiers this grant reads and answers. */
export const TOKEN_TYPE = {
  accessToken: "urn:ietf:params:oauth:token-type:access_token",
  jwt: "urn:ietf:params:oauth:token-type:jwt",
} as const;

const ACCEPTED_TYPES: readonly string[] = [TOKEN_TYPE.accessToken, TOKEN_TYPE.jwt];

export interface TokenExchangeDeps {
  store: Store;
  issuerJwts: IssuerJwts;
  clock: Clock;
  config: () => Config;
  /** One of this key manager's access tokens, active or not, if it issued it. */
  ownToken(token: string): Promise<TokenRecord | undefined>;
}

/** Who a subject or actor token speaks for. */
interface Party {
  subject: string;
  /** The trusted issuer it came from; undefined for this key manager's own token. */
  issuer: string | undefined;
  scopes: string[];
  expiresAt: Date;
}

/**
 * RFC 8693: an authenticated client exchanges `subject_token` (a JWT of a trusted issuer, or a
 * user token this key manager issued to the same client) for a user token of this key manager
 * for the same subject, optionally naming an `actor_token` (its subject goes into the JWT's act
 * claim), narrower scopes, a target (`audience`, `resource`) and `requested_token_type`. The
 * token never outlives the subject token. Refusals per section 2.2.2: invalid_request (bad or
 * unacceptable tokens, unsupported token types), invalid_target, invalid_scope.
 */
export async function tokenExchangeGrant(deps: TokenExchangeDeps, client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
  const p = request.requestParameters;
  const issuedTokenType = requestedType(p.requested_token_type ?? "");
  checkTypes(p);
  await checkTarget(deps, client, p.audience ?? "", p.resource ?? "");
  const subject = await party(deps, client, p.subject_token ?? "", "subject_token", request.scopes);
  const actor = p.actor_token ? await party(deps, client, p.actor_token, "actor_token", []) : undefined;
  const now = deps.clock.nowMs();
  const remaining = Math.floor((subject.expiresAt.getTime() - now) / 1000);
  if (remaining < 1) throw invalid("subject_token", "has expired");
  const claims: JWTPayload | undefined = actor ? { act: { sub: actor.subject, ...(actor.issuer ? { iss: actor.issuer } : {}) } } : undefined;
  return {
    endUser: subject.subject,
    scopes: subject.scopes,
    familyId: randomUUID(),
    withRefresh: false,
    maxSeconds: remaining,
    tokenType: issuedTokenType === TOKEN_TYPE.jwt ? "JWT" : undefined,
    claims,
    issuedTokenType,
  };
}

function invalid(field: string, description: string): InvalidArgumentError {
  return new InvalidArgumentError([{ field, description }], { oauth: "invalid_request" });
}

function requestedType(requested: string): string {
  if (requested === "" || requested === TOKEN_TYPE.accessToken) return TOKEN_TYPE.accessToken;
  if (requested === TOKEN_TYPE.jwt) return TOKEN_TYPE.jwt;
  throw invalid("requested_token_type", "unsupported token type (access_token or jwt)");
}

function checkTypes(p: Record<string, string>): void {
  if (!p.subject_token) throw invalid("subject_token", "is required");
  if (!p.subject_token_type) throw invalid("subject_token_type", "is required");
  if (!ACCEPTED_TYPES.includes(p.subject_token_type)) throw invalid("subject_token_type", "unsupported token type (access_token or jwt)");
  if (p.actor_token && !p.actor_token_type) throw invalid("actor_token_type", "is required with actor_token");
  if (!p.actor_token && p.actor_token_type) throw invalid("actor_token", "is required with actor_token_type");
  if (p.actor_token_type && !ACCEPTED_TYPES.includes(p.actor_token_type)) throw invalid("actor_token_type", "unsupported token type (access_token or jwt)");
}

/**
 * RFC 8693 section 2.1's audience and resource: tokens of this key manager serve its own APIs, so
 * the targets it issues for are itself (its issuer, under which `resource` may name a path), the
 * client, or an API registered here (by api_id). Anything else is invalid_target.
 */
async function checkTarget(deps: TokenExchangeDeps, client: OAuthClient, audience: string, resource: string): Promise<void> {
  const config = deps.config();
  const refuse = (field: string) =>
    new InvalidArgumentError([{ field, description: "is not a target this key manager issues tokens for" }], { oauth: "invalid_target" });
  if (resource !== "") {
    const absolute = URL.canParse(resource) && !resource.includes("#");
    if (!absolute) throw invalid("resource", "must be an absolute URI without a fragment");
    if (resource !== config.issuer && !resource.startsWith(`${config.issuer}/`)) throw refuse("resource");
  }
  if (audience === "" || audience === config.issuer || audience === config.endpoints.token || audience === client.consumerKey) return;
  if (audience.length > 255 || !(await apiExists(deps.store, audience))) throw refuse("audience");
}

async function apiExists(store: Store, apiId: string): Promise<boolean> {
  try {
    await store.apis.get(apiId);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

async function party(deps: TokenExchangeDeps, client: OAuthClient, token: string, field: string, requested: readonly string[]): Promise<Party> {
  const issuer = await deps.issuerJwts.issuerOf(token);
  if (issuer) {
    const jwt = await deps.issuerJwts.verify(token, { field, oauth: "invalid_request" });
    return { subject: jwt.subject, issuer: jwt.issuer.issuer, scopes: scopesFromIssuerJwt(client, jwt, requested), expiresAt: jwt.expiresAt };
  }
  const own = await deps.ownToken(token);
  // Only a user token of the same client: another client's token (or an application token) is
  // not this client's to trade, and is answered as an unknown one.
  if (!own || !isActive(own, deps.clock.nowMs()) || own.consumerKey !== client.consumerKey || own.endUser === "") {
    throw invalid(field, "is neither a JWT of a trusted issuer nor an active user token of this client");
  }
  return { subject: own.endUser, issuer: undefined, scopes: scopesOrRefusal(narrowScopes(requested, own.scopes, own.scopes)), expiresAt: own.expiresAt };
}
