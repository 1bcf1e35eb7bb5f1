import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AuthorizationSettings, Config } from "../config/config.js";
import type { Clock } from "../domain/clock.js";
import { NotFoundError, UnauthenticatedError } from "../domain/errors.js";
import type { Consent, LoginSession, OAuthClient } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { Validator } from "../domain/validator.js";
import { checkScopes } from "../keymanager/validation.js";
import type { Store } from "../storage/store.js";
import type { AuthenticationThrottle } from "./authentication-throttle.js";
import { DUMMY_PASSWORD_HASH, verifyPassword } from "./passwords.js";
import { isS256Challenge, PKCE_METHOD } from "./pkce.js";
import { grantScopes, parseScopeParameter } from "./scopes.js";
import { hashToken, newOpaqueToken } from "./token-hash.js";
import { OIDC_SCOPES } from "./user-claims.js";
import { userScopes } from "./user-scopes.js";

/** An authorization request (RFC 6749 section 4.1.1) once checked: what the pages and the code carry. */
export interface AuthorizationRequest {
  client: OAuthClient;
  /** Where the answer goes: a callback URL registered for the client. */
  redirectUri: string;
  /** Whether the request named redirect_uri (then the token request must name the same). */
  redirectUriGiven: boolean;
  /**
   * The scopes the code will carry: those asked for that the client may have; once the user is
   * known (forUser), only those the user's roles allow.
   */
  scopes: string[];
  /** Once the user is known (forUser): the scopes asked for that the user's roles do not allow. */
  notGranted: string[];
  state: string;
  nonce: string;
  codeChallenge: string;
  /** OpenID Connect prompt values: none, login, consent. */
  prompt: Set<string>;
}

/** What may be sent back with an error, once the redirect URI is trusted. */
export interface RedirectTarget {
  redirectUri: string;
  state: string;
}

/**
 * The request cannot be answered at a redirect URI the client registered (unknown client, a
 * redirect_uri not registered): RFC 6749 section 4.1.2.1 says to tell the user, not redirect.
 */
export class UntrustedRedirectError extends Error {}

/** An RFC 6749 section 4.1.2.1 error, sent to the client's redirect URI. */
export class AuthorizationRedirectError extends Error {
  constructor(
    readonly error: string,
    message: string,
    readonly target: RedirectTarget,
  ) {
    super(message);
  }
}

/** A logged-in user's session and the cookie value that names it (shown once, kept as a hash). */
export interface StartedSession {
  cookieValue: string;
  session: LoginSession;
}

/** Parameters of the request, each given once; `repeated` names those given more than once. */
export interface AuthorizationParameters {
  values: Record<string, string>;
  repeated: string[];
}

const PROMPTS = new Set(["none", "login", "consent"]);

/**
 * The scopes a code carries: the API scopes asked for that the client may have ("default" when
 * none, as for every grant), and the OpenID Connect scopes asked for, which every client may ask.
 * A request for OpenID Connect scopes only gets those alone.
 */
function scopesFor(client: OAuthClient, requested: readonly string[]): string[] {
  const oidc = [...new Set(requested.filter((s) => OIDC_SCOPES.includes(s)))];
  const api = requested.filter((s) => !OIDC_SCOPES.includes(s));
  return oidc.length > 0 && api.length === 0 ? oidc : [...grantScopes(api, client.scopes), ...oidc];
}

/**
 * The authorization endpoint's domain (RFC 6749 section 4.1, PKCE RFC 7636): checks requests,
 * logs users in (throttled as client secrets are), remembers consents, issues codes. Codes are
 * exchanged by TokenService's authorization_code grant.
 */
export class AuthorizationService {
  constructor(
    private readonly store: Store,
    private readonly config: () => Config,
    private readonly clock: Clock,
    private readonly throttle: AuthenticationThrottle,
  ) {}

  private get settings(): AuthorizationSettings {
    return this.config().authorization;
  }

  /** Checks an authorization request; throws UntrustedRedirectError or AuthorizationRedirectError. */
  async check(params: AuthorizationParameters): Promise<AuthorizationRequest> {
    const p = params.values;
    if (params.repeated.includes("client_id") || params.repeated.includes("redirect_uri")) {
      throw new UntrustedRedirectError("client_id and redirect_uri must each be given once");
    }
    const clientId = p.client_id ?? "";
    const client = clientId && clientId.length <= 255 ? await this.store.clients.find(clientId) : undefined;
    // Only this key manager's application clients: a system client or an external key manager's has no page here.
    if (!client || client.system || client.keyManager !== this.config().name) throw new UntrustedRedirectError("unknown client_id");
    const given = p.redirect_uri;
    let redirectUri: string;
    if (given !== undefined) {
      // Exact string comparison (RFC 9700 section 4.1.3): no prefix, no normalisation.
      if (!client.callbackUrls.includes(given)) throw new UntrustedRedirectError("redirect_uri is not registered for this client");
      redirectUri = given;
    } else {
      if (client.callbackUrls.length !== 1) throw new UntrustedRedirectError("redirect_uri is required: the client registered more than one");
      redirectUri = client.callbackUrls[0] as string;
    }
    const state = p.state ?? "";
    const target = { redirectUri, state: state.length <= this.settings.maxParameterChars ? state : "" };
    const refuse = (error: string, message: string) => new AuthorizationRedirectError(error, message, target);

    if (params.repeated.length > 0) throw refuse("invalid_request", `${params.repeated.join(", ")} must be given once`);
    const tooLong = Object.entries(p).find(([, value]) => value.length > this.settings.maxParameterChars);
    if (tooLong) throw refuse("invalid_request", `${tooLong[0]} is longer than ${this.settings.maxParameterChars} characters`);
    if (!p.response_type) throw refuse("invalid_request", "response_type is required");
    if (p.response_type !== "code") throw refuse("unsupported_response_type", "only response_type=code is supported");
    if (!client.grantTypes.includes("authorization_code")) throw refuse("unauthorized_client", "the client may not use the authorization_code grant");

    const requested = parseScopeParameter(p.scope);
    const v = new Validator();
    checkScopes(v, "scope", requested);
    if (!v.ok) throw refuse("invalid_scope", "scope must be space-separated scope tokens");

    const challenge = p.code_challenge ?? "";
    const method = p.code_challenge_method;
    if (challenge === "") {
      if (client.publicClient) throw refuse("invalid_request", "a public client must use PKCE: code_challenge (S256) is required");
      if (this.settings.requirePkce) throw refuse("invalid_request", "PKCE is required: code_challenge (S256) is required");
      if (method !== undefined) throw refuse("invalid_request", "code_challenge_method without code_challenge");
    } else {
      if (method !== PKCE_METHOD) throw refuse("invalid_request", "code_challenge_method must be S256");
      if (!isS256Challenge(challenge)) throw refuse("invalid_request", "code_challenge must be a base64url SHA-256 digest (43 characters)");
    }
    const prompt = new Set(parseScopeParameter(p.prompt));
    if ([...prompt].some((value) => !PROMPTS.has(value))) throw refuse("invalid_request", "prompt must be none, login or consent");
    if (prompt.has("none") && prompt.size > 1) throw refuse("invalid_request", "prompt=none cannot be combined with other values");
    return {
      client,
      redirectUri,
      redirectUriGiven: given !== undefined,
      scopes: scopesFor(client, requested),
      notGranted: [],
      state,
      nonce: p.nonce ?? "",
      codeChallenge: challenge,
      prompt,
    };
  }

  /**
   * Checks a user's password under the throttle client secrets are checked under (the source
   * is paused for the username after repeated failures); starts a session.
   */
  async login(username: string, password: string, source: string): Promise<StartedSession> {
    const attempt = { source, subject: username };
    this.throttle.check(attempt);
    const user = username !== "" && username.length <= 255 ? await this.store.users.find(username) : undefined;
    const valid = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (!user || !valid) {
      const delayMs = this.throttle.failed(attempt);
      if (delayMs > 0) await sleep(delayMs);
      throw new UnauthenticatedError("invalid username or password");
    }
    this.throttle.succeeded(attempt);
    const now = this.clock.now();
    const cookieValue = newOpaqueToken();
    const session: LoginSession = {
      sessionHash: hashToken(cookieValue),
      username: user.username,
      authTime: now,
      expiresAt: new Date(now.getTime() + this.settings.sessionSeconds * 1000),
    };
    await this.store.loginSessions.insert(session);
    return { cookieValue, session };
  }

  /** The live session a cookie names, if any. */
  async session(cookieValue: string | undefined): Promise<LoginSession | undefined> {
    if (!cookieValue) return undefined;
    const session = await this.store.loginSessions.find(hashToken(cookieValue));
    if (!session || session.expiresAt <= this.clock.now()) return undefined;
    return session;
  }

  async logout(cookieValue: string | undefined): Promise<void> {
    if (cookieValue) await this.store.loginSessions.delete(hashToken(cookieValue));
  }

  /**
   * The request as it stands for a user: its scopes narrowed to those the user's roles allow (as
   * token issuance narrows them, userScopes), the others named in notGranted. What the consent
   * page shows, the consent records and the code carries.
   */
  async forUser(request: AuthorizationRequest, username: string): Promise<AuthorizationRequest> {
    const scopes = await userScopes(this.store, username, request.scopes);
    return { ...request, scopes, notGranted: request.scopes.filter((s) => !scopes.includes(s)) };
  }

  /** Whether the user already consented to every scope the request asks for. */
  async consented(request: AuthorizationRequest, username: string): Promise<boolean> {
    const consent = await this.store.consents.find(request.client.consumerKey, username);
    return consent !== undefined && request.scopes.every((s) => consent.scopes.includes(s));
  }

  /** Remembers that the user lets the client have the request's scopes (with those granted before). */
  async consent(request: AuthorizationRequest, username: string): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (s) => {
      const existing = await s.consents.find(request.client.consumerKey, username, { forUpdate: true });
      const scopes = [...new Set([...(existing?.scopes ?? []), ...request.scopes])];
      await s.consents.save({ consumerKey: request.client.consumerKey, username, scopes, createdAt: existing?.createdAt ?? now, updatedAt: now });
    });
  }

  /** A new authorization code for the request and the session's user; stored only as its hash. */
  async issueCode(request: AuthorizationRequest, session: LoginSession): Promise<string> {
    const code = newOpaqueToken();
    const now = this.clock.now();
    await this.store.authorizationCodes.insert({
      codeHash: hashToken(code),
      consumerKey: request.client.consumerKey,
      username: session.username,
      scopes: request.scopes,
      redirectUri: request.redirectUriGiven ? request.redirectUri : "",
      codeChallenge: request.codeChallenge,
      nonce: request.nonce,
      familyId: randomUUID(),
      authTime: session.authTime,
      createdAt: now,
      expiresAt: new Date(now.getTime() + this.settings.codeSeconds * 1000),
      usedAt: undefined,
    });
    return code;
  }

  /** A page of a user's consents. */
  async consents(username: string, page: PageQuery): Promise<Page<Consent>> {
    await this.store.users.get(username);
    return this.store.consents.listByUser(username, page);
  }

  /** Forgets a consent and ends the tokens the client holds for the user. */
  async revokeConsent(username: string, consumerKey: string): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (s) => {
      // The user's row orders this with the user's token rotations (token-service.ts, lockFamilies).
      await s.users.find(username, { forUpdate: true });
      if (!(await s.consents.delete(consumerKey, username))) throw new NotFoundError("the user has no consent for this client");
      for (const familyId of await s.tokens.familiesOf(consumerKey, username)) {
        await s.tokens.revokeFamily(familyId, now);
        s.changed({ kind: "tokens", familyId });
      }
    });
  }
}
