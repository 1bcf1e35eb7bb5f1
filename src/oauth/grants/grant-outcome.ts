import type { JWTPayload } from "jose";
import type { AuthorizationCode, TokenRecord, TokenType } from "../../domain/model/index.js";

/** What a grant decided: who the token is for, with which scopes, descending from what. */
export interface GrantOutcome {
  endUser: string;
  scopes: string[];
  familyId: string;
  withRefresh: boolean;
  /** refresh_token grant: the token whose refresh token the new one replaces. */
  replaces?: TokenRecord;
  /** password grant: the password hash the credentials were checked against. */
  passwordHash?: string;
  /** authorization_code grant: the code, spent when the token is stored. */
  code?: AuthorizationCode;
  /** The longest the token may live, in seconds (0 or absent: no bound of the grant's own). */
  maxSeconds?: number;
  /** A format other than the client's (token exchange's requested_token_type jwt). */
  tokenType?: TokenType;
  /** Claims a JWT access token carries besides the usual ones (token exchange's act). */
  claims?: JWTPayload;
  /** RFC 8693's issued_token_type of the answer. */
  issuedTokenType?: string;
}
