import type { RevokedToken } from "../../domain/change-events.js";
import { createRemoteJWKSet, decodeJwt, type JWTPayload, jwtVerify } from "jose";
import { UnavailableError } from "../../domain/errors.js";
import type { TokenRecord } from "../../domain/model/index.js";
import { looksLikeJwt } from "../../oauth/signing-keys.js";
import { readConfiguredClaims } from "../../oauth/jwt-claims.js";
import type { KeyManagerFeatures } from "../../config/key-manager-features.js";
import type { Introspection } from "./token-endpoints.js";

/** The resident TokenRecord shape of an external token, so the gateway check treats both alike. */
export function recordFromIntrospection(i: Introspection, tokenHash: string, token: string, nowMs: number, fallbackTtlMs: number): TokenRecord {
  return record({
    tokenHash,
    token,
    clientId: i.clientId,
    endUser: i.username || (i.subject !== i.clientId ? i.subject : ""),
    scopes: i.scopes,
    issuedAtMs: i.issuedAt > 0 ? i.issuedAt * 1000 : nowMs,
    expiresAtMs: i.expiresAt > 0 ? i.expiresAt * 1000 : nowMs + fallbackTtlMs,
    tokenId: i.tokenId,
  });
}

/** The default claim names: the consumer key in client_id (else azp), the scopes in scope. */
const STANDARD_CLAIMS: ClaimNames = { consumerKeyClaim: "client_id", scopesClaim: "scope", claimMappings: [] };

type ClaimNames = Pick<KeyManagerFeatures, "consumerKeyClaim" | "scopesClaim" | "claimMappings">;

/** `names`: the key manager's consumer_key_claim, scopes_claim and claim_mappings ([key_manager.external.features]). */
export function recordFromJwt(
  p: JWTPayload,
  tokenHash: string,
  token: string,
  nowMs: number,
  fallbackTtlMs: number,
  names: ClaimNames = STANDARD_CLAIMS,
): TokenRecord {
  const read = readConfiguredClaims(p, names);
  const clientId = read.clientId ?? (typeof p.client_id === "string" ? p.client_id : typeof p.azp === "string" ? p.azp : "");
  const sub = read.claims.sub;
  return record({
    tokenHash,
    token,
    clientId,
    endUser: typeof sub === "string" && sub !== clientId ? sub : "",
    scopes: read.scopes ?? [],
    issuedAtMs: p.iat ? p.iat * 1000 : nowMs,
    expiresAtMs: p.exp ? p.exp * 1000 : nowMs + fallbackTtlMs,
    tokenId: p.jti ?? "",
  });
}

function record(r: {
  tokenHash: string;
  token: string;
  clientId: string;
  endUser: string;
  scopes: string[];
  issuedAtMs: number;
  expiresAtMs: number;
  tokenId: string;
}): TokenRecord {
  return {
    id: r.tokenId || r.tokenHash.slice(0, 32),
    tokenHash: r.tokenHash,
    consumerKey: r.clientId,
    endUser: r.endUser,
    scopes: r.scopes,
    tokenType: looksLikeJwt(r.token) ? "JWT" : "OPAQUE",
    grantType: "",
    issuedAt: new Date(r.issuedAtMs),
    expiresAt: new Date(r.expiresAtMs),
    revokedAt: undefined,
    refreshHash: undefined,
    refreshExpiresAt: undefined,
    refreshUsedAt: undefined,
    familyId: "",
  };
}

/** The `iss` of a token shaped like a JWT, unverified: only to pick who verifies it. */
export function unverifiedIssuer(token: string): string | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    const iss = decodeJwt(token).iss;
    return typeof iss === "string" ? iss.replace(/\/+$/, "") : undefined;
  } catch {
    return undefined;
  }
}

/** The `exp` of a JWT in milliseconds, unverified; undefined for anything else. */
export function unverifiedExpiry(token: string): number | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    const exp = decodeJwt(token).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A revoked JWT of an external server as gateways learn of it (its jti until it expires, unverified:
 * the server already took it back); undefined for an opaque token or a JWT without jti or exp.
 */
export function revokedExternalJwt(token: string, consumerKey: string): RevokedToken | undefined {
  if (!looksLikeJwt(token)) return undefined;
  try {
    const { jti, exp, client_id } = decodeJwt(token);
    if (typeof jti !== "string" || typeof exp !== "number") return undefined;
    return { jti, expiresAt: exp * 1000, consumerKey: consumerKey || (typeof client_id === "string" ? client_id : ""), tokenType: "JWT" };
  } catch {
    return undefined;
  }
}

/**
 * Verifies a server's JWTs against its JWKS (fetched on need, within the timeout). A bad
 * signature, issuer or expiry is an invalid token; a JWKS that cannot be fetched is UnavailableError.
 */
export class JwksVerifier {
  private jwks: ReturnType<typeof createRemoteJWKSet> | undefined;

  constructor(
    private readonly keyManager: string,
    private readonly issuer: string,
    private readonly timeoutMs: number,
    private readonly jwksUrl: () => Promise<string>,
  ) {}

  async verify(token: string, now: Date): Promise<JWTPayload | undefined> {
    this.jwks ??= createRemoteJWKSet(new URL(await this.jwksUrl()), { timeoutDuration: this.timeoutMs });
    try {
      const { payload } = await jwtVerify(token, this.jwks, { currentDate: now });
      // Issuers compare without trailing slashes, as the configuration stores them.
      return typeof payload.iss === "string" && payload.iss.replace(/\/+$/, "") === this.issuer ? payload : undefined;
    } catch (err) {
      if (isUnreachable(err)) throw new UnavailableError(`key manager "${this.keyManager}" is not available: its JWKS cannot be fetched`);
      return undefined;
    }
  }
}

/** jose's own errors judge the token, except JWKS fetch failures; anything else is the network. */
function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("ERR_")) return true;
  return code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID";
}
