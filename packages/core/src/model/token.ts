/** What a decision needs to know about an access token (never the token itself). */

/** Opaque (random, looked up) or a JWT (verified with the issuer's keys). */
export const TOKEN_TYPES = ["OPAQUE", "JWT"] as const;
export type TokenType = (typeof TOKEN_TYPES)[number];

export interface TokenFacts {
  /** The client the token was issued to. */
  consumerKey: string;
  /** The resource owner; empty for an application token. */
  endUser: string;
  scopes: string[];
  tokenType: TokenType;
  issuedAt: Date;
  expiresAt: Date;
  revokedAt: Date | undefined;
}

/** An application token (client credentials) has no end user; a user token has one. */
export function isApplicationToken(token: Pick<TokenFacts, "endUser">): boolean {
  return token.endUser === "";
}

/** Neither revoked nor expired at `now` (epoch ms). */
export function isActive(token: Pick<TokenFacts, "revokedAt" | "expiresAt">, now: number): boolean {
  return token.revokedAt === undefined && token.expiresAt.getTime() > now;
}
