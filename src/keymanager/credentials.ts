import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new consumer key: 160 random bits, URL-safe (27 characters, like WSO2's 28). */
export function newConsumerKey(): string {
  return randomBytes(20).toString("base64url");
}

/** A new consumer secret: 256 random bits, URL-safe. */
export function newConsumerSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** Compares two secrets in time that depends on neither's content nor length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
