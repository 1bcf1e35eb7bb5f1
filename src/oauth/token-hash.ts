import { hash, randomBytes } from "node:crypto";

/**
 * Tokens are stored and looked up only by this hash: SHA-256, hex. The one-shot crypto.hash costs
 * a third of createHash().update().digest(); the gateway's hot path hashes twice per call.
 */
export function hashToken(token: string): string {
  return hash("sha256", token, "hex");
}

/**
 * An opaque token: 256 random bits, URL-safe (43 characters), never starting with "-" (drawn
 * again, about 1 in 64), so a command line such as `km tokens validate <token>` takes it as the
 * token and not as an option.
 */
export function newOpaqueToken(): string {
  for (;;) {
    const token = randomBytes(32).toString("base64url");
    if (!token.startsWith("-")) return token;
  }
}
