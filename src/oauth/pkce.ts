import { hash, timingSafeEqual } from "node:crypto";

/** RFC 7636 section 4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
/** An S256 challenge: a SHA-256 digest, base64url without padding (43 characters). */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

/** The only method taken: "plain" would hand the verifier to whoever sees the authorization request. */
export const PKCE_METHOD = "S256";

export function isS256Challenge(challenge: string): boolean {
  return S256_CHALLENGE.test(challenge);
}

/** Whether `verifier` is the one `challenge` was made from (compared in constant time). */
export function verifierMatches(verifier: string, challenge: string): boolean {
  if (!VERIFIER.test(verifier) || !isS256Challenge(challenge)) return false;
  const computed = Buffer.from(hash("sha256", verifier, "base64url"));
  const expected = Buffer.from(challenge);
  return computed.length === expected.length && timingSafeEqual(computed, expected);
}
