import type { ExternalKeyManagerConfig } from "../../config/external-key-managers.js";
import { FailedPreconditionError, UnavailableError } from "../../domain/errors.js";
import { fields, type OAuth2HttpClient, str } from "./http-client.js";

export interface Endpoints {
  registration: string;
  token: string;
  introspection: string;
  revocation: string;
  jwks: string;
}

export type EndpointName = keyof Endpoints;

/**
 * The server's endpoints: the configured ones, the rest from its metadata (RFC 8414, then
 * OpenID Connect discovery). Metadata is fetched on first need and kept once read, so a server
 * down at start-up delays nothing.
 */
export class EndpointResolver {
  private discovered: Promise<Partial<Endpoints>> | undefined;

  constructor(
    private readonly config: ExternalKeyManagerConfig,
    private readonly http: OAuth2HttpClient,
  ) {}

  async get(name: EndpointName): Promise<string> {
    const configured = this.config.endpoints[name];
    if (configured) return configured;
    const found = this.config.discovery ? (await this.metadata())[name] : undefined;
    if (!found) throw new FailedPreconditionError(`key manager "${this.config.name}" has no ${name} endpoint`);
    return found;
  }

  private metadata(): Promise<Partial<Endpoints>> {
    this.discovered ??= this.discover().catch((err: unknown) => {
      this.discovered = undefined;
      throw err;
    });
    return this.discovered;
  }

  private async discover(): Promise<Partial<Endpoints>> {
    for (const url of wellKnownUrls(this.config.issuer)) {
      const { status, body } = await this.http.send({ method: "GET", url, idempotent: true });
      if (status !== 200) continue;
      const m = fields(body);
      if (str(m.issuer).replace(/\/+$/, "") !== this.config.issuer) continue;
      return {
        registration: str(m.registration_endpoint) || undefined,
        token: str(m.token_endpoint) || undefined,
        introspection: str(m.introspection_endpoint) || undefined,
        revocation: str(m.revocation_endpoint) || undefined,
        jwks: str(m.jwks_uri) || undefined,
      };
    }
    throw new UnavailableError(`key manager "${this.config.name}" is not available: no metadata for its issuer (RFC 8414 or OpenID discovery)`);
  }
}

/** RFC 8414 section 3 (well-known segment before the issuer's path), then OpenID discovery. */
function wellKnownUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname === "/" ? "" : url.pathname;
  return [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${issuer}/.well-known/openid-configuration`];
}
