import { createHash, timingSafeEqual } from "node:crypto";
import { SCOPES } from "./scopes.js";
import type { Principal } from "./principal.js";

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

/**
 * Shared secrets a forward-auth gateway (nginx, Caddy, Traefik) may authenticate with instead of
 * a system client's token, which lives at most `validity.system_token`: a static value in the
 * gateway's configuration. Only their SHA-256 is configured; a presented value is hashed and
 * compared with every configured hash in constant time. Several, so a secret can be rotated.
 */
export class GatewaySecrets {
  private readonly hashes: Buffer[];

  constructor(sha256Hex: readonly string[]) {
    this.hashes = sha256Hex.map((h) => Buffer.from(h, "hex"));
  }

  /** The gateway, with scope km:gateway, when `authorization` is `Bearer <one of the secrets>`; else undefined. */
  authenticate(authorization: string | undefined): Principal | undefined {
    if (this.hashes.length === 0 || !authorization) return undefined;
    const value = BEARER.exec(authorization)?.[1];
    if (!value) return undefined;
    const presented = createHash("sha256").update(value).digest();
    let matched = -1;
    // Every hash compared, whichever matches.
    this.hashes.forEach((hash, i) => {
      if (timingSafeEqual(hash, presented) && matched === -1) matched = i;
    });
    if (matched === -1) return undefined;
    return { clientId: `gateway-secret:${matched + 1}`, scopes: new Set([SCOPES.gateway]), subscriber: "", groups: [] };
  }
}
