import { createHash, randomBytes } from "node:crypto";

/** Tokens are stored and looked up only by this hash: SHA-256, hex. */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** An opaque token: 256 random bits, URL-safe (43 characters). */
export function newOpaqueToken(): string {
  return randomBytes(32).toString("base64url");
}
