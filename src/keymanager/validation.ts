import { parseTemplate } from "@keymanager/core";
import { isSystemScope } from "../auth/scopes.js";
import { type Validator, hasControlCharacters } from "../domain/validator.js";
import { isKnownGrantType, PUBLIC_CLIENT_GRANT_TYPES, REDIRECTING_GRANT_TYPES } from "./grant-types.js";
import { type ApiResource, AUTH_LEVELS, type ClientSettings, HTTP_VERBS } from "../domain/model/index.js";

/** Bounds of stored fields, checked before any work. */
export const LIMITS = {
  id: 128,
  name: 255,
  url: 2048,
  callbackUrls: 20,
  grantTypes: 20,
  scope: 100,
  scopes: 100,
  properties: 50,
  propertyKey: 100,
  propertyValue: 1000,
  secret: 512,
  resources: 1000,
  uriTemplate: 1024,
  tier: 100,
} as const;

// RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;
// Identifiers from the store and publisher: UUIDs and similar, printable and unambiguous.
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
// A consumer key from another key manager: any printable ASCII without spaces.
const CONSUMER_KEY = /^[\x21-\x7e]+$/;

export function checkIdentifier(v: Validator, field: string, value: string): void {
  if (!v.text(field, value, LIMITS.id)) return;
  if (!IDENTIFIER.test(value)) v.add(field, "must be letters, digits and . _ : @ - only");
}

export function checkConsumerKey(v: Validator, field: string, value: string): void {
  if (!v.text(field, value, LIMITS.id)) return;
  if (!CONSUMER_KEY.test(value)) v.add(field, "must be printable ASCII without spaces");
}

/** Checks an OAuth client's settings as they will be stored. */
export function checkClientSettings(v: Validator, s: ClientSettings, maxValiditySeconds: number, publicClient = false): void {
  v.text("client_name", s.clientName, LIMITS.name);
  checkGrantTypes(v, s.grantTypes);
  if (publicClient) checkPublicGrantTypes(v, s.grantTypes);
  checkCallbackUrls(v, s.callbackUrls, s.grantTypes);
  checkScopes(v, "scopes", s.scopes);
  if (s.scopes.length <= LIMITS.scopes) {
    s.scopes.forEach((scope, i) => {
      if (isSystemScope(scope)) v.add(`scopes[${i}]`, "is reserved for system clients");
    });
  }
  v.nonNegativeInteger("application_token_validity_seconds", s.validity.applicationTokenSeconds, maxValiditySeconds);
  v.nonNegativeInteger("user_token_validity_seconds", s.validity.userTokenSeconds, maxValiditySeconds);
  v.nonNegativeInteger("refresh_token_validity_seconds", s.validity.refreshTokenSeconds, maxValiditySeconds);
  checkProperties(v, "additional_properties", s.additionalProperties);
}

export function checkGrantTypes(v: Validator, grantTypes: readonly string[]): void {
  if (grantTypes.length === 0) v.add("grant_types", "at least one grant type is required");
  // Past the limit, the list is refused as a whole: its elements are not each looked at (and described).
  if (grantTypes.length > LIMITS.grantTypes) {
    v.add("grant_types", `at most ${LIMITS.grantTypes} grant types`);
    return;
  }
  grantTypes.forEach((g, i) => {
    if (!isKnownGrantType(g)) v.add(`grant_types[${i}]`, "unknown grant type");
  });
  if (new Set(grantTypes).size !== grantTypes.length) v.add("grant_types", "must not repeat a grant type");
}

/** A public client has no secret to prove itself with: only the grants that need none. */
function checkPublicGrantTypes(v: Validator, grantTypes: readonly string[]): void {
  if (grantTypes.length > LIMITS.grantTypes) return;
  grantTypes.forEach((g, i) => {
    if (isKnownGrantType(g) && !PUBLIC_CLIENT_GRANT_TYPES.includes(g)) {
      v.add(`grant_types[${i}]`, `a public client (token_endpoint_auth_method none) may use only ${PUBLIC_CLIENT_GRANT_TYPES.join(" and ")}`);
    }
  });
  if (!grantTypes.includes("authorization_code")) v.add("grant_types", "a public client needs authorization_code");
}

export function checkCallbackUrls(v: Validator, urls: readonly string[], grantTypes: readonly string[]): void {
  if (urls.length > LIMITS.callbackUrls) {
    v.add("callback_urls", `at most ${LIMITS.callbackUrls} callback URLs`);
    return;
  }
  const needed = grantTypes.filter((g) => REDIRECTING_GRANT_TYPES.includes(g));
  if (urls.length === 0 && needed.length > 0) {
    v.add("callback_urls", `a callback URL is required for ${needed.join(" and ")}`);
  }
  urls.forEach((url, i) => {
    const problem = callbackUrlProblem(url);
    if (problem) v.add(`callback_urls[${i}]`, problem);
  });
}

function callbackUrlProblem(url: string): string | undefined {
  if (url.length > LIMITS.url) return `must be at most ${LIMITS.url} characters`;
  if (hasControlCharacters(url) || /\s/.test(url)) return "must not contain spaces or control characters";
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "must be an absolute URL";
  }
  if (parsed.hash !== "") return "must not contain a fragment";
  const scheme = parsed.protocol.slice(0, -1).toLowerCase();
  if (REFUSED_SCHEMES.has(scheme)) return `the ${scheme}: scheme is not allowed (http, https, or a native app's own scheme)`;
  return undefined;
}

/**
 * Callback URLs are http, https, or a private-use scheme of a native app (RFC 8252 section 7.1,
 * `com.example.app:/cb`). Schemes a browser runs or reads locally, and the URL standard's other
 * special schemes, are never a place to send a code or token.
 */
const REFUSED_SCHEMES = new Set(["javascript", "data", "vbscript", "file", "blob", "about", "filesystem", "view-source", "ftp", "ws", "wss"]);

export function checkScopes(v: Validator, field: string, scopes: readonly string[]): void {
  if (scopes.length > LIMITS.scopes) {
    v.add(field, `at most ${LIMITS.scopes} scopes`);
    return;
  }
  scopes.forEach((scope, i) => {
    checkScopeToken(v, `${field}[${i}]`, scope);
  });
}

/** One scope-token (RFC 6749 section 3.3), at most LIMITS.scope characters. */
export function checkScopeToken(v: Validator, field: string, scope: string): void {
  if (scope.length === 0 || scope.length > LIMITS.scope || !SCOPE_TOKEN.test(scope)) {
    v.add(field, `must be 1 to ${LIMITS.scope} printable characters without spaces, quotes or backslashes`);
  }
}

export function checkProperties(v: Validator, field: string, properties: Record<string, string>): void {
  const entries = Object.entries(properties);
  if (entries.length > LIMITS.properties) {
    v.add(field, `at most ${LIMITS.properties} entries`);
    return;
  }
  for (const [key, value] of entries) {
    if (key.length === 0 || key.length > LIMITS.propertyKey || hasControlCharacters(key)) {
      v.add(`${field}`, `keys must be 1 to ${LIMITS.propertyKey} printable characters`);
    } else if (value.length > LIMITS.propertyValue) {
      v.add(`${field}[${key}]`, `must be at most ${LIMITS.propertyValue} characters`);
    }
  }
}

const TEMPLATE_SYNTAX =
  'is not a URI template: segments are literal text, variables ("{id}", "{name}.json") or, last, "*" or "{+path}"; braces must pair and segments must not be empty';

export function checkResources(v: Validator, resources: readonly ApiResource[]): void {
  if (resources.length > LIMITS.resources) {
    v.add("resources", `at most ${LIMITS.resources} resources`);
    return;
  }
  const seen = new Set<string>();
  resources.forEach((r, i) => {
    const at = `resources[${i}]`;
    if (!r.uriTemplate.startsWith("/")) v.add(`${at}.uri_template`, "must start with /");
    else if (r.uriTemplate.length > LIMITS.uriTemplate) v.add(`${at}.uri_template`, `must be at most ${LIMITS.uriTemplate} characters`);
    else if (/\s/.test(r.uriTemplate) || hasControlCharacters(r.uriTemplate)) v.add(`${at}.uri_template`, "must not contain spaces");
    else if (!parseTemplate(r.uriTemplate)) v.add(`${at}.uri_template`, TEMPLATE_SYNTAX);
    if (!(HTTP_VERBS as readonly string[]).includes(r.httpVerb)) v.add(`${at}.http_verb`, `must be one of ${HTTP_VERBS.join(", ")}`);
    if (!(AUTH_LEVELS as readonly string[]).includes(r.authLevel)) v.add(`${at}.auth_level`, "is required");
    checkScopes(v, `${at}.scopes`, r.scopes);
    v.text(`${at}.throttling_tier`, r.throttlingTier, LIMITS.tier);
    const key = `${r.httpVerb} ${r.uriTemplate}`;
    if (seen.has(key)) v.add(at, `duplicates ${key}`);
    seen.add(key);
  });
}

/** Grant types a key manager does not offer (its available_grant_types) are refused, each named. */
export function checkAvailableGrantTypes(v: Validator, grantTypes: readonly string[], available: readonly string[], keyManager: string): void {
  if (grantTypes.length > LIMITS.grantTypes) return;
  grantTypes.forEach((g, i) => {
    if (isKnownGrantType(g) && !available.includes(g)) v.add(`grant_types[${i}]`, `is not available at key manager "${keyManager}" (available_grant_types)`);
  });
}
