import type * as http from "node:http";
import type { TLSSocket } from "node:tls";
import { parse as parseCookies, serialize as serializeCookie } from "cookie";
import Tokens from "csrf";
import type { Config } from "../config/config.js";
import { DomainError } from "../domain/errors.js";
import type { LoginSession } from "../domain/model/index.js";
import {
  type AuthorizationParameters,
  AuthorizationRedirectError,
  type AuthorizationRequest,
  type AuthorizationService,
  UntrustedRedirectError,
} from "../oauth/authorization-service.js";
import type { AuditLog } from "./audit-log.js";
import { consentPage, errorPage, type FlowFields, loginPage, logoutPage, STYLESHEET, STYLESHEET_PATH } from "./authorization-pages.js";
import type { ClientAddresses } from "./client-address.js";
import { requestAddress } from "./http-server.js";
import { FormError, readForm } from "./oauth-routes.js";

interface Deps {
  authorization: AuthorizationService;
  config: () => Config;
  addresses: ClientAddresses;
  maxFormBytes: number;
  audit: AuditLog;
}

const SESSION_COOKIE = "km_session";
const CSRF_COOKIE = "km_csrf";
const COOKIE_PATH = "/oauth2";
const csrf = new Tokens();

/** What one browser request brings: its cookies' session and anti-CSRF secret. */
interface Browser {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  session: LoginSession | undefined;
  sessionCookie: string | undefined;
  csrfSecret: string;
  /** Cookies to set with the response. */
  cookies: string[];
}

/**
 * The authorization endpoint (RFC 6749 section 4.1) and its pages: GET /oauth2/authorize checks
 * the request and shows the login or consent page (or redirects with a code at once when the
 * user is signed in and consented before); POST /oauth2/authorize takes those pages' forms;
 * /oauth2/logout ends the session.
 */
export function authorizeRoutes(deps: Deps): (req: http.IncomingMessage, res: http.ServerResponse) => Promise<boolean> {
  return async (req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === STYLESHEET_PATH && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/css; charset=utf-8", "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff" });
      res.end(STYLESHEET);
      return true;
    }
    if (path !== "/oauth2/authorize" && path !== "/oauth2/logout") return false;
    if (req.method !== "GET" && req.method !== "POST") {
      sendPage(res, 405, errorPage("Method not allowed", "Use GET or POST."), { allow: "GET, POST" });
      return true;
    }
    const browser = await openBrowser(deps, req, res);
    if (path === "/oauth2/logout") {
      await (req.method === "GET" ? showLogout(browser) : logout(deps, browser));
      return true;
    }
    if (req.method === "GET") await authorize(deps, browser, new URLSearchParams((req.url ?? "").split("?")[1] ?? ""));
    else await submit(deps, browser);
    return true;
  };
}

async function openBrowser(deps: Deps, req: http.IncomingMessage, res: http.ServerResponse): Promise<Browser> {
  const cookies = parseCookies(req.headers.cookie ?? "");
  const sessionCookie = cookies[SESSION_COOKIE];
  const session = await deps.authorization.session(sessionCookie);
  const browser: Browser = { req, res, session, sessionCookie, csrfSecret: cookies[CSRF_COOKIE] ?? "", cookies: [] };
  if (!browser.csrfSecret || browser.csrfSecret.length > 64) {
    browser.csrfSecret = await csrf.secret();
    browser.cookies.push(cookie(deps, req, CSRF_COOKIE, browser.csrfSecret, undefined));
  }
  return browser;
}

/** HttpOnly, SameSite=Lax, Secure when the pages are served over TLS (directly or per the issuer). */
function cookie(deps: Deps, req: http.IncomingMessage, name: string, value: string, maxAgeSeconds: number | undefined): string {
  const secure = (req.socket as TLSSocket).encrypted === true || deps.config().issuer.startsWith("https:");
  return serializeCookie(name, value, {
    httpOnly: true,
    secure,
    sameSite: "lax",
    path: COOKIE_PATH,
    ...(maxAgeSeconds === undefined ? {} : { maxAge: maxAgeSeconds }),
  });
}

function parameters(query: URLSearchParams): AuthorizationParameters {
  const values: Record<string, string> = {};
  const repeated: string[] = [];
  for (const [key, value] of query) {
    if (Object.hasOwn(values, key)) {
      if (!repeated.includes(key)) repeated.push(key);
    } else values[key] = value;
  }
  return { values, repeated };
}

/** GET: the request's next step for this browser. */
async function authorize(deps: Deps, browser: Browser, query: URLSearchParams): Promise<void> {
  const asked = await checked(deps, browser, query, 302);
  if (!asked) return;
  const fields = { csrfToken: csrf.create(browser.csrfSecret), request: query.toString() };
  const { session } = browser;
  if (asked.prompt.has("none")) {
    if (!session) return redirectError(browser, new AuthorizationRedirectError("login_required", "the user is not signed in", asked), 302);
    const request = await deps.authorization.forUser(asked, session.username);
    if (!(await deps.authorization.consented(request, session.username))) {
      return redirectError(browser, new AuthorizationRedirectError("consent_required", "the user has not consented to these scopes", request), 302);
    }
    return issueCode(deps, browser, request, session, 302);
  }
  if (!session || asked.prompt.has("login")) return showLogin(browser, asked, fields, 200);
  return nextAfterLogin(deps, browser, asked, session, fields, !asked.prompt.has("consent"), 302);
}

/**
 * Signed in: the consent page (the scopes the user's roles allow, and apart those they do not),
 * or the code at once when the user consented to the allowed scopes before.
 */
async function nextAfterLogin(
  deps: Deps,
  browser: Browser,
  asked: AuthorizationRequest,
  session: LoginSession,
  fields: FlowFields,
  rememberedConsent: boolean,
  status: 302 | 303,
): Promise<void> {
  const request = await deps.authorization.forUser(asked, session.username);
  if (rememberedConsent && (await deps.authorization.consented(request, session.username))) return issueCode(deps, browser, request, session, status);
  sendPage(
    browser.res,
    200,
    consentPage({ clientName: request.client.clientName, username: session.username, scopes: request.scopes, notGranted: request.notGranted, fields }),
    pageHeaders(browser, request.redirectUri),
  );
}

/** POST: the login or consent form. */
async function submit(deps: Deps, browser: Browser): Promise<void> {
  const form = await formOf(deps, browser);
  if (!form) return;
  if (!csrfValid(browser, form)) return;
  const query = new URLSearchParams(form.get("request") ?? "");
  const asked = await checked(deps, browser, query, 303);
  if (!asked) return;
  const fields = { csrfToken: csrf.create(browser.csrfSecret), request: query.toString() };
  const action = form.get("action");
  if (action === "login") return login(deps, browser, asked, fields, form);
  if (!browser.session) return showLogin(browser, asked, fields, 200);
  if (action === "deny") return redirectError(browser, new AuthorizationRedirectError("access_denied", "the user denied the request", asked), 303);
  if (action !== "consent") {
    sendPage(browser.res, 400, errorPage("Bad request", "The form's action is missing or unknown."), pageHeaders(browser, undefined));
    return;
  }
  // Narrowed only for what is consented to and carried by the code: a denial needs no reads.
  const request = await deps.authorization.forUser(asked, browser.session.username);
  await deps.authorization.consent(request, browser.session.username);
  deps.audit.changeBy(browser.session.username, "POST /oauth2/authorize", { consumerKey: request.client.consumerKey, consent: request.scopes.join(" ") });
  return issueCode(deps, browser, request, browser.session, 303);
}

async function login(deps: Deps, browser: Browser, request: AuthorizationRequest, fields: FlowFields, form: URLSearchParams): Promise<void> {
  const username = form.get("username") ?? "";
  try {
    const started = await deps.authorization.login(username, form.get("password") ?? "", requestAddress(browser.req, deps.addresses));
    if (browser.sessionCookie) await deps.authorization.logout(browser.sessionCookie);
    browser.session = started.session;
    browser.cookies.push(cookie(deps, browser.req, SESSION_COOKIE, started.cookieValue, deps.config().authorization.sessionSeconds));
    return nextAfterLogin(deps, browser, request, started.session, fields, !request.prompt.has("consent"), 303);
  } catch (err) {
    if (!(err instanceof DomainError) || (err.kind !== "unauthenticated" && err.kind !== "resource_exhausted")) throw err;
    const throttled = err.kind === "resource_exhausted";
    const error = throttled ? `Too many failed sign-ins from your address: ${err.message.replace(/^.*; /, "")}.` : "The username or password is not right.";
    return showLogin(browser, request, fields, throttled ? 429 : 401, username, error, throttled ? { "retry-after": retryAfter(err.message) } : {});
  }
}

function retryAfter(message: string): string {
  return /retry in (\d+) s/.exec(message)?.[1] ?? "1";
}

function showLogin(
  browser: Browser,
  request: AuthorizationRequest,
  fields: FlowFields,
  status: number,
  username?: string,
  error?: string,
  headers: Record<string, string> = {},
): void {
  sendPage(browser.res, status, loginPage({ clientName: request.client.clientName, fields, username, error }), {
    ...pageHeaders(browser, request.redirectUri),
    ...headers,
  });
}

async function issueCode(deps: Deps, browser: Browser, request: AuthorizationRequest, session: LoginSession, status: 302 | 303): Promise<void> {
  const code = await deps.authorization.issueCode(request, session);
  redirect(browser, status, request.redirectUri, { code, ...(request.state ? { state: request.state } : {}) });
}

/** The request checked; on an error, the answer sent (a page, or a redirect to the client) and undefined. */
async function checked(deps: Deps, browser: Browser, query: URLSearchParams, status: 302 | 303): Promise<AuthorizationRequest | undefined> {
  try {
    return await deps.authorization.check(parameters(query));
  } catch (err) {
    if (err instanceof UntrustedRedirectError) {
      sendPage(
        browser.res,
        400,
        errorPage("This request cannot be answered", `The application's request is not valid: ${err.message}.`),
        pageHeaders(browser, undefined),
      );
      return undefined;
    }
    if (err instanceof AuthorizationRedirectError) {
      redirectError(browser, err, status);
      return undefined;
    }
    throw err;
  }
}

function redirectError(browser: Browser, err: AuthorizationRedirectError, status: 302 | 303): void {
  const { redirectUri, state } = err.target;
  redirect(browser, status, redirectUri, { error: err.error, error_description: err.message, ...(state ? { state } : {}) });
}

function redirect(browser: Browser, status: 302 | 303, redirectUri: string, params: Record<string, string>): void {
  const url = new URL(redirectUri);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  browser.res.writeHead(status, { location: url.toString(), "cache-control": "no-store", "referrer-policy": "no-referrer", ...cookieHeader(browser) });
  browser.res.end();
}

async function formOf(deps: Deps, browser: Browser): Promise<URLSearchParams | undefined> {
  try {
    return await readForm(browser.req, deps.maxFormBytes);
  } catch (err) {
    if (!(err instanceof FormError)) throw err;
    sendPage(browser.res, 400, errorPage("Bad request", err.message), pageHeaders(browser, undefined));
    return undefined;
  }
}

/** The form's anti-CSRF token was made from this browser's secret; else a 403 page. */
function csrfValid(browser: Browser, form: URLSearchParams): boolean {
  const token = form.get("csrf_token") ?? "";
  if (token !== "" && csrf.verify(browser.csrfSecret, token)) return true;
  sendPage(
    browser.res,
    403,
    errorPage("The form has expired", "The form did not come from this site, or it is too old. Go back, reload the page and try again."),
    pageHeaders(browser, undefined),
  );
  return false;
}

function showLogout(browser: Browser): void {
  sendPage(browser.res, 200, logoutPage({ csrfToken: csrf.create(browser.csrfSecret), username: browser.session?.username }), pageHeaders(browser, undefined));
}

async function logout(deps: Deps, browser: Browser): Promise<void> {
  const form = await formOf(deps, browser);
  if (!form || !csrfValid(browser, form)) return;
  await deps.authorization.logout(browser.sessionCookie);
  browser.cookies.push(cookie(deps, browser.req, SESSION_COOKIE, "", 0));
  sendPage(browser.res, 200, logoutPage({ csrfToken: "", username: undefined }), pageHeaders(browser, undefined));
}

function cookieHeader(browser: Browser): Record<string, string[]> {
  return browser.cookies.length > 0 ? { "set-cookie": browser.cookies } : {};
}

/**
 * A strict Content-Security-Policy: no script at all, style from this origin, forms posted only
 * here, and (where the form's answer redirects to the client) to the client's redirect URI.
 */
function pageHeaders(browser: Browser, redirectUri: string | undefined): Record<string, string | string[]> {
  return {
    "content-security-policy": `default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'${redirectUri ? ` ${formTarget(redirectUri)}` : ""}; frame-ancestors 'none'; base-uri 'none'`,
    ...cookieHeader(browser),
  };
}

/** The CSP source of a redirect URI: its origin (http, https) or its scheme (a native app's). */
function formTarget(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.protocol === "http:" || url.protocol === "https:" ? url.origin : url.protocol;
}

function sendPage(res: http.ServerResponse, status: number, html: string, headers: Record<string, string | string[]>): void {
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-length": Buffer.byteLength(html),
    "cache-control": "no-store",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ...headers,
  });
  res.end(html);
}
