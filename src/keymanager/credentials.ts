import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** A new consumer key: 160 random bits, URL-safe (27 characters, like WSO2's 28). */
export function newConsumerKey(): string {
  return randomText(20);
}

/** A new consumer secret: 256 random bits, URL-safe. */
export function newConsumerSecret(): string {
  return randomText(32);
}

/**
 * `bytes` random bytes in base64url, drawn again while the text starts with "-": command lines
 * (km's, curl's) read such a value as an option (`--consumer-key -x…` is refused as ambiguous).
 */
function randomText(bytes: number): string {
  for (;;) {
    const text = randomBytes(bytes).toString("base64url");
    if (!text.startsWith("-")) return text;
  }
}

/** Compares two secrets in time that depends on neither's content nor length. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
