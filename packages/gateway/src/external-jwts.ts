import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";

/** An external key manager as the snapshot describes it (issuer without trailing slashes). */
export interface ExternalIssuer {
  name: string;
  issuer: string;
  /** Where its JWKS is; empty: found by discovery under the issuer. */
  jwksUri: string;
  /** Its JWTs verified with its JWKS ("jwks"), or introspected by the server ("introspection"). */
  jwtValidation: string;
  /** How long the server keeps this issuer's word on one of its tokens before asking again (ms). */
  validationCacheMs: number;
}

type RemoteKeys = ReturnType<typeof createRemoteJWKSet>;

/** After a failed discovery, the server is asked for this long before discovery is tried again. */
const DISCOVERY_RETRY_MS = 30_000;

/**
 * Verifies external key managers' JWTs in process, as the server does (jose's jwtVerify against
 * the key manager's JWKS at the caller's clock, then the issuer without trailing slashes): each
 * JWKS fetched once (from the snapshot's location, or the issuer's metadata) and kept by jose,
 * fetched again for a key it does not hold.
 */
export class ExternalJwtVerifier {
  private readonly keys = new Map<string, { jwksUri: string; keys: Promise<RemoteKeys> }>();
  private readonly failedAt = new Map<string, number>();

  constructor(private readonly options: { timeoutMs: number; now: () => number }) {}

  /**
   * The token's claims when genuine and current; null when it is not (bad signature, issuer,
   * expired, not yet valid: the server says so too); undefined when the JWKS cannot be had (the
   * server is asked: it says 900912 when it cannot have it either).
   */
  async verify(token: string, km: ExternalIssuer, now: number): Promise<JWTPayload | null | undefined> {
    let keys: RemoteKeys;
    try {
      keys = await this.keysOf(km);
    } catch {
      return undefined;
    }
    try {
      const { payload } = await jwtVerify(token, keys, { currentDate: new Date(now) });
      return typeof payload.iss === "string" && payload.iss.replace(/\/+$/, "") === km.issuer ? payload : null;
    } catch (err) {
      return unreachable(err) ? undefined : null;
    }
  }

  private keysOf(km: ExternalIssuer): Promise<RemoteKeys> {
    const held = this.keys.get(km.issuer);
    if (held && held.jwksUri === km.jwksUri) return held.keys;
    const failed = this.failedAt.get(km.issuer);
    if (failed !== undefined && this.options.now() - failed < DISCOVERY_RETRY_MS) return Promise.reject(new Error("discovery failed recently"));
    const keys = (km.jwksUri ? Promise.resolve(km.jwksUri) : this.discover(km)).then((uri) =>
      createRemoteJWKSet(new URL(uri), { timeoutDuration: this.options.timeoutMs }),
    );
    this.keys.set(km.issuer, { jwksUri: km.jwksUri, keys });
    keys.catch(() => {
      this.keys.delete(km.issuer);
      this.failedAt.set(km.issuer, this.options.now());
    });
    return keys;
  }

  /** The JWKS location from the issuer's metadata: RFC 8414, then OpenID discovery (as the server reads it). */
  private async discover(km: ExternalIssuer): Promise<string> {
    for (const url of wellKnownUrls(km.issuer)) {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs), redirect: "error" });
      if (res.status !== 200) continue;
      const metadata = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (typeof metadata.issuer !== "string" || metadata.issuer.replace(/\/+$/, "") !== km.issuer) continue;
      if (typeof metadata.jwks_uri === "string" && metadata.jwks_uri !== "") return metadata.jwks_uri;
    }
    throw new Error(`key manager "${km.name}": no JWKS location in its metadata`);
  }
}

/** RFC 8414 section 3 (well-known segment before the issuer's path), then OpenID discovery. */
function wellKnownUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname === "/" ? "" : url.pathname;
  return [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${issuer}/.well-known/openid-configuration`];
}

/** jose's own errors judge the token, except JWKS fetch failures; anything else is the network. */
function unreachable(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("ERR_")) return true;
  return code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID";
}
