/** A system client's credentials, exchanged for tokens at the token endpoint (client_credentials). */
export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
  /** Scopes to ask for; none: all the client holds. */
  scopes?: readonly string[];
}

export interface TokenSourceOptions {
  /** The OAuth2 token endpoint, for example http://127.0.0.1:8080/oauth2/token. */
  tokenUrl: string;
  credentials: ClientCredentials;
  /**
   * How long before its expiry a token is replaced (seconds, default 60; never more than half its
   * lifetime). Calls meanwhile keep using the old one while the new one is fetched.
   */
  refreshBeforeSeconds?: number;
  /** The clock, milliseconds (tests). */
  now?: () => number;
}

interface Held {
  token: string;
  refreshAt: number;
  expiresAt: number;
}

/**
 * Access tokens of one client, got with client_credentials (RFC 6749 §4.4, client authentication
 * by HTTP Basic) and replaced before they expire: one request at a time, whatever the number of
 * callers waiting.
 */
export class TokenSource {
  private held: Held | undefined;
  private pending: Promise<Held> | undefined;
  private readonly now: () => number;

  constructor(private readonly options: TokenSourceOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A token valid now: the one held, or a new one. */
  async token(): Promise<string> {
    const now = this.now();
    const held = this.held;
    if (held && now < held.refreshAt) return held.token;
    const next = this.refresh();
    if (held && now < held.expiresAt) {
      // Still valid: used while its successor is fetched; a failed refresh is retried next call.
      next.catch(() => {});
      return held.token;
    }
    return (await next).token;
  }

  /** Forgets the token held (the server refused it): the next call gets a new one. */
  invalidate(): void {
    this.held = undefined;
  }

  private refresh(): Promise<Held> {
    this.pending ??= this.fetchToken().then(
      (held) => {
        this.held = held;
        this.pending = undefined;
        return held;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    return this.pending;
  }

  private async fetchToken(): Promise<Held> {
    const { clientId, clientSecret, scopes } = this.options.credentials;
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64");
    const body = new URLSearchParams({ grant_type: "client_credentials" });
    if (scopes && scopes.length > 0) body.set("scope", scopes.join(" "));
    const started = this.now();
    const res = await fetch(this.options.tokenUrl, {
      method: "POST",
      headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body,
    });
    const text = await res.text();
    let json: { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } = {};
    try {
      json = JSON.parse(text);
    } catch {}
    if (!res.ok || typeof json.access_token !== "string") {
      const reason = [json.error, json.error_description].filter((s) => typeof s === "string").join(": ");
      throw new Error(`token endpoint ${this.options.tokenUrl} answered HTTP ${res.status}${reason ? ` (${reason})` : ""} for client ${clientId}`);
    }
    const lifetimeMs = typeof json.expires_in === "number" && json.expires_in > 0 ? json.expires_in * 1000 : 3_600_000;
    const earlyMs = Math.min((this.options.refreshBeforeSeconds ?? 60) * 1000, lifetimeMs / 2);
    return { token: json.access_token, expiresAt: started + lifetimeMs, refreshAt: started + lifetimeMs - earlyMs };
  }
}
