/**
 * An outside issuer whose JWTs the token endpoint accepts: assertions of the JWT bearer grant
 * (RFC 7523) and subject or actor tokens of token exchange (RFC 8693).
 */
export interface TrustedIssuer {
  /** Its JWTs' `iss`, without trailing slashes: the natural key. */
  issuer: string;
  /** Where its keys are published; "" when `jwk` holds its one key. */
  jwksUri: string;
  /** One public JWK as JSON; "" when `jwksUri` is given. */
  jwk: string;
  /** Subjects accepted exactly; "*" accepts any. */
  allowedSubjects: string[];
  /** Scopes a token issued from its JWTs may carry. */
  allowedScopes: string[];
  /** The longest a token issued from its JWTs lives; 0: the client's user token validity. */
  maxTokenSeconds: number;
  /** The longest its JWTs may live; 0: DEFAULT_MAX_ASSERTION_SECONDS. */
  maxAssertionSeconds: number;
  /** The `aud` its JWTs must name; "": this key manager's issuer or token endpoint. */
  audience: string;
  description: string;
  createdAt: Date;
  updatedAt: Date;
}

/** The longest an issuer's JWT may live when its settings name no bound. */
export const DEFAULT_MAX_ASSERTION_SECONDS = 3600;

/** An allowed_subjects entry accepting every subject. */
export const ANY_SUBJECT = "*";
