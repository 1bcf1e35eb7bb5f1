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

/** How an added consumer secret is kept: SHA-256 of its value, hex (256 random bits need no salt). */
export function secretHash(secret: string): string {
  return digest(secret).toString("hex");
}

/** What may be shown of a secret once made: its last 4 characters. */
export function secretHint(secret: string): string {
  return secret.slice(-4);
}

/** An added secret as the check needs it: its hash and when it stops being accepted. */
export interface AcceptedSecret {
  secretHash: string;
  expiresAt: Date | undefined;
}

/**
 * Whether `presented` is the client's secret or one of its added, unexpired ones. Every secret
 * is compared, whatever matched first, each in constant time: the time depends on how many
 * secrets the client has, never on their contents or on which one matched.
 */
export function acceptsSecret(presented: string, primary: string, added: readonly AcceptedSecret[], now: Date): boolean {
  const given = digest(presented);
  let ok = timingSafeEqual(given, digest(primary));
  for (const secret of added) {
    const stored = Buffer.from(secret.secretHash, "hex");
    const matches = stored.length === given.length && timingSafeEqual(given, stored);
    const current = secret.expiresAt === undefined || secret.expiresAt.getTime() > now.getTime();
    ok = (matches && current) || ok;
  }
  return ok;
}
