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
   * A token the copy can judge by itself (a JWT signed with keys it holds, or an external key
   * manager's verified with its JWKS): its facts (revokedAt set when revoked), or null when the
   * server knows no such token. undefined: the copy cannot judge it (an opaque token, or another
   * issuer's): the server is asked, and what it says of the token kept. "server": only the server
   * can tell this time: it is asked.
   */
  verifyToken(token: string, now: number): Promise<TokenFacts | null | undefined | "server"> | TokenFacts | null | undefined | "server";
  /**
   * The change log version the copy shows: it changes with every change the copy applies (answers
   * decided from the copy are kept while it stays the same; what the server vouched for is kept
   * with it).
   */
  readonly version: bigint | undefined;
  /**
   * Whether a token the server vouched for (at copy version `keptAtVersion`) has been revoked
   * since: "revoked" (by consumer key or end user: refused as revoked at once), "recheck" (a
   * revocation that may concern it arrived since: the server is asked again), undefined: not
   * revoked. Asked at each use of a kept answer.
   */
  revocation(facts: TokenFacts, keptAtVersion: bigint | undefined): Revocation;
  /**
   * How long (ms) what the server said of a token of key manager `keyManager` may be kept: an
   * external key manager's tokens are revoked at its own server, which the server asks again only
   * after its validation cache period. undefined (or no such method): until the token expires (the
   * resident key manager's revocations reach the copy).
   */
  keepAnswerMs?(keyManager: string): number | undefined;
}

export type Revocation = "revoked" | "recheck" | undefined;
