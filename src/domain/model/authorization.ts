/** The authorization code grant (RFC 6749 section 4.1): codes, login sessions and consents. */

/** How a client proves itself at the token endpoint: with its secret, or not at all (a public client). */
export type ClientAuthMethod = "client_secret_basic" | "none";

/** An authorization code as stored: only its hash. */
export interface AuthorizationCode {
  codeHash: string;
  consumerKey: string;
  username: string;
  scopes: string[];
  /** The redirect_uri the authorization request named; empty when it named none. */
  redirectUri: string;
  /** PKCE S256 challenge; empty when the request sent none. */
  codeChallenge: string;
  /** OpenID Connect nonce; empty when none. */
  nonce: string;
  /** The family of the tokens the code gives (revoked together if the code comes back). */
  familyId: string;
  authTime: Date;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | undefined;
}

/** A user logged in on the authorization pages: the cookie's value is kept only as a hash. */
export interface LoginSession {
  sessionHash: string;
  username: string;
  authTime: Date;
  expiresAt: Date;
}

/** The scopes a user let a client have, remembered so the consent page is not shown again. */
export interface Consent {
  consumerKey: string;
  username: string;
  scopes: string[];
  createdAt: Date;
  updatedAt: Date;
}
