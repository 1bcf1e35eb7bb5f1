import { decodeJwt, errors, type JWTPayload, jwtVerify } from "jose";
import type { Config } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { InvalidArgumentError, type OAuthErrorCode, UnavailableError } from "../domain/errors.js";
import { ANY_SUBJECT, DEFAULT_MAX_ASSERTION_SECONDS, type TrustedIssuer } from "../domain/model/index.js";
import type { Store } from "../storage/store.js";
import { isKeyFetchFailure, type IssuerKeys } from "./issuer-keys.js";
import { looksLikeJwt } from "./signing-keys.js";
import { withoutTrailingSlashes } from "./trusted-issuers.js";

/** A JWT of a trusted issuer, verified: its issuer's settings, its claims, its subject and expiry. */
export interface IssuerJwt {
  issuer: TrustedIssuer;
  claims: JWTPayload;
  subject: string;
  expiresAt: Date;
  /** Its `scope` claim split, or undefined when it has none. */
  scopes: string[] | undefined;
}

/** How a refusal reads: the request field it names and the OAuth2 error its grant answers with. */
export interface Refusal {
  field: string;
  oauth: OAuthErrorCode;
}

/**
 * Verifies JWTs of trusted issuers (RFC 7523 section 3, RFC 8693 section 2.1): issued by one
 * (iss), signed by one of its keys, for this key manager (aud: the issuer's `audience`, else this
 * key manager's issuer or token endpoint), within its times (exp required, nbf and iat, with
 * clock_skew_seconds of leeway), no longer-lived than its max_assertion_seconds, with a subject
 * it allows. Any other JWT is refused naming `field`; keys that cannot be fetched are
 * UnavailableError (temporarily_unavailable), never a wait past jwks_timeout_ms.
 */
export class IssuerJwts {
  constructor(
    private readonly store: Store,
    private readonly keys: IssuerKeys,
    private readonly config: () => Config,
    private readonly clock: Clock,
  ) {}

  /** The trusted issuer named by a JWT's (unverified) iss, if any: only to choose who verifies it. */
  async issuerOf(token: string): Promise<TrustedIssuer | undefined> {
    if (!looksLikeJwt(token)) return undefined;
    let iss: unknown;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      return undefined;
    }
    if (typeof iss !== "string" || iss === "" || iss.length > 1024) return undefined;
    return this.store.trustedIssuers.find(withoutTrailingSlashes(iss));
  }

  async verify(token: string, refusal: Refusal): Promise<IssuerJwt> {
    const refuse = (description: string) => new InvalidArgumentError([{ field: refusal.field, description }], { oauth: refusal.oauth });
    if (!looksLikeJwt(token)) throw refuse("is not a JWT");
    const issuer = await this.issuerOf(token);
    if (!issuer) throw refuse("is not from a trusted issuer");
    const config = this.config();
    const now = this.clock.now();
    const skew = config.trustedIssuers.clockSkewSeconds;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(token, this.keys.for(issuer), {
        issuer: [issuer.issuer, `${issuer.issuer}/`],
        audience: issuer.audience !== "" ? issuer.audience : [config.issuer, config.endpoints.token],
        clockTolerance: skew,
        currentDate: now,
        requiredClaims: ["exp", "sub"],
      }));
    } catch (err) {
      if (isKeyFetchFailure(err)) {
        throw new UnavailableError(`the keys of trusted issuer ${JSON.stringify(issuer.issuer)} cannot be fetched`, { oauth: "temporarily_unavailable" });
      }
      throw refuse(describeJoseError(err));
    }
    const exp = (claims.exp as number) * 1000;
    const from = typeof claims.iat === "number" ? claims.iat * 1000 : now.getTime();
    const longest = (issuer.maxAssertionSeconds || DEFAULT_MAX_ASSERTION_SECONDS) + skew;
    if (exp - from > longest * 1000) throw refuse("lives longer than its trusted issuer's max_assertion_seconds allows");
    const subject = claims.sub as string;
    if (!issuer.allowedSubjects.includes(ANY_SUBJECT) && !issuer.allowedSubjects.includes(subject)) {
      throw refuse("names a subject its trusted issuer does not allow");
    }
    const scopes = typeof claims.scope === "string" ? claims.scope.split(" ").filter((s) => s !== "") : undefined;
    return { issuer, claims, subject, expiresAt: new Date(exp), scopes };
  }
}

/** A bounded description of why jose refused a JWT; never the token or jose's own text. */
function describeJoseError(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "has expired";
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === "aud") return "is not for this key manager (aud)";
    if (err.claim === "iss") return "is not from a trusted issuer";
    if (err.claim === "nbf") return "is not valid yet (nbf)";
    if (err.claim === "iat") return "was issued in the future (iat)";
    if (err.claim === "sub" || err.claim === "exp") return `has no valid ${err.claim} claim`;
    return "has a claim that is not valid";
  }
  if (err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return "is not signed by a key of its trusted issuer";
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) return "is signed with an algorithm not accepted";
  return "is not a valid JWT";
}
