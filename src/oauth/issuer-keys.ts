import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from "jose";
import { LRUCache } from "lru-cache";
import type { TrustedIssuerSettings } from "../config/config.js";
import type { TrustedIssuer } from "../domain/model/index.js";

/** Public key types a trusted issuer's JWK may be; a symmetric ("oct") key would be a shared secret. */
const PUBLIC_KEY_TYPES = new Set(["EC", "RSA", "OKP"]);
/** Members only private keys have. */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/** What is wrong with a JWK given as a trusted issuer's key, or undefined when it will do. */
export function checkJwk(text: string): string | undefined {
  let jwk: unknown;
  try {
    jwk = JSON.parse(text);
  } catch {
    return "is not valid JSON";
  }
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) return "must be a JSON object (one JWK)";
  const kty = (jwk as { kty?: unknown }).kty;
  if (typeof kty !== "string" || !PUBLIC_KEY_TYPES.has(kty)) return "kty must be EC, RSA or OKP";
  if (PRIVATE_MEMBERS.some((m) => m in jwk)) return "must be a public key (it has private members)";
  return undefined;
}

/**
 * The verification keys of trusted issuers: a JWKS fetched with jose's createRemoteJWKSet (each
 * fetch bounded by jwks_timeout_ms, kept jwks_cache_max_age_ms, refetched for an unknown kid at
 * most every jwks_cooldown_ms), or the one JWK configured. Kept per key source, so an issuer
 * whose source changes (on any replica) is verified with the new one at once; at most
 * jwks_cached_issuers sources are kept, the least recently used dropped first.
 */
export class IssuerKeys {
  private readonly sets: LRUCache<string, JWTVerifyGetKey>;

  constructor(private readonly settings: () => TrustedIssuerSettings) {
    this.sets = new LRUCache({ max: settings().jwksCachedIssuers });
  }

  for(issuer: TrustedIssuer): JWTVerifyGetKey {
    const source = issuer.jwksUri !== "" ? `uri ${issuer.jwksUri}` : `jwk ${issuer.jwk}`;
    let keys = this.sets.get(source);
    if (!keys) {
      keys = issuer.jwksUri !== "" ? this.remote(issuer.jwksUri) : createLocalJWKSet({ keys: [JSON.parse(issuer.jwk) as JWK] } as JSONWebKeySet);
      this.sets.set(source, keys);
    }
    return keys;
  }

  private remote(uri: string): JWTVerifyGetKey {
    const s = this.settings();
    return createRemoteJWKSet(new URL(uri), {
      timeoutDuration: s.jwksTimeoutMs,
      cacheMaxAge: s.jwksCacheMaxAgeMs,
      cooldownDuration: s.jwksCooldownMs,
      [customFetch]: (url, options) => fetchAtMost(url, options, s.jwksMaxBytes),
    });
  }
}

/**
 * fetch, with the answer's body read up to `maxBytes`: a JWKS endpoint answering megabytes (or
 * without end) is a fetch failure, not memory spent. The timeout's signal bounds the reading too.
 */
async function fetchAtMost(url: string, options: RequestInit, maxBytes: number): Promise<Response> {
  const response = await fetch(url, options);
  if (!response.body) return response;
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      await response.body.cancel().catch(() => undefined);
      throw new Error(`the JWKS answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return new Response(Buffer.concat(chunks), { status: response.status, headers: response.headers });
}

/** A JWKS that could not be fetched (unreachable, slow, not a JWKS), as opposed to a bad token. */
export function isKeyFetchFailure(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("ERR_")) return true;
  // ERR_JOSE_GENERIC: an answer other than 200, or one that is not JSON.
  return code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID" || code === "ERR_JOSE_GENERIC";
}
