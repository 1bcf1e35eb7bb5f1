import type { Facts, TokenFacts } from "@keymanager/core";

/**
 * What the validator decides from in process: a copy of the key manager's gateway data (APIs and
 * their resources, key mappings, subscriptions, signing keys, revocations), kept current from the
 * server's Watch stream. The validator asks it every time whether it may be used; while it may
 * not (never loaded, or its stream down longer than the staleness bound), every call is asked of
 * the server.
 */
export interface LocalCopy extends Omit<Facts, "token"> {
  /**
   * Whether decisions may be made from the copy at `now` (epoch ms): it is loaded, and what it
   * shows was current at most the staleness bound ago.
   */
  usable(now: number): boolean;
  /**
   * A token the copy can judge by itself (a JWT signed with keys it holds): its facts, or null
   * when it is not genuine (bad signature, wrong issuer) or revoked. undefined: the copy cannot
   * judge it (an opaque token, or an issuer whose tokens are introspected): the server is asked.
   */
  verifyToken(token: string, now: number): Promise<TokenFacts | null | undefined> | TokenFacts | null | undefined;
  /**
   * Whether a token the server vouched for has been revoked since (by consumer key, by end user,
   * or by itself): asked at each use of a kept answer, so a pushed revocation refuses it at once.
   */
  revoked(facts: TokenFacts, token: string): boolean;
}
