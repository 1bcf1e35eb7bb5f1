import { randomUUID } from "node:crypto";
import type { Clock } from "../../domain/clock.js";
import { InvalidArgumentError } from "../../domain/errors.js";
import type { AccessTokenRequest, OAuthClient } from "../../domain/model/index.js";
import type { Store } from "../../storage/store.js";
import type { IssuerJwts } from "../issuer-jwts.js";
import type { GrantOutcome } from "./grant-outcome.js";
import { scopesFromIssuerJwt } from "./issuer-scopes.js";

export const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";

export interface JwtBearerDeps {
  store: Store;
  issuerJwts: IssuerJwts;
  clock: Clock;
}

/**
 * RFC 7523 section 2.1: an authenticated client presents `assertion`, a JWT of a trusted issuer,
 * and gets a user token for its subject. Refusals are invalid_grant (section 3.1); the assertion's
 * jti is spent last, so a refused request leaves it unused, and a second use is refused until the
 * assertion expires (only a hash of issuer and jti is kept).
 */
export async function jwtBearerGrant(deps: JwtBearerDeps, client: OAuthClient, request: AccessTokenRequest): Promise<GrantOutcome> {
  const assertion = request.requestParameters.assertion ?? "";
  if (assertion === "") throw new InvalidArgumentError([{ field: "assertion", description: "is required" }], { oauth: "invalid_request" });
  const refuse = (description: string) => new InvalidArgumentError([{ field: "assertion", description }], { oauth: "invalid_grant" });
  const jwt = await deps.issuerJwts.verify(assertion, { field: "assertion", oauth: "invalid_grant" });
  const jti = jwt.claims.jti;
  if (typeof jti !== "string" || jti === "" || jti.length > 1024) throw refuse("has no jti, so it could be replayed");
  const scopes = scopesFromIssuerJwt(client, jwt, request.scopes);
  if (!(await deps.store.trustedIssuers.spendJti(jwt.issuer.issuer, jti, jwt.expiresAt, deps.clock.now()))) throw refuse("has been used already (jti)");
  return { endUser: jwt.subject, scopes, familyId: randomUUID(), withRefresh: false, maxSeconds: jwt.issuer.maxTokenSeconds };
}
