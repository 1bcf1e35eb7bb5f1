import { InvalidArgumentError } from "../domain/errors.js";
import type { AccessTokenRequest, OAuthClient } from "../domain/model/index.js";

export function emptyTokenRequest(): AccessTokenRequest {
  return {
    clientId: "",
    clientSecret: "",
    grantType: "",
    scopes: [],
    callbackUri: "",
    resourceOwnerUsername: "",
    resourceOwnerPassword: "",
    refreshToken: "",
    validityPeriodSeconds: 0,
    tokenToRevoke: "",
    requestParameters: {},
  };
}

type Setter = (r: AccessTokenRequest, value: unknown) => void;
const text = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
const scopesOf = (value: unknown) => (Array.isArray(value) ? value.map(text) : text(value).split(" ").filter(Boolean));

/** JSON members that name request fields (WSO2 and RFC 6749 spellings); all others become parameters. */
const FIELDS: Record<string, Setter> = {
  client_id: (r, v) => {
    r.clientId = text(v);
  },
  clientId: (r, v) => {
    r.clientId = text(v);
  },
  client_secret: (r, v) => {
    r.clientSecret = text(v);
  },
  clientSecret: (r, v) => {
    r.clientSecret = text(v);
  },
  grant_type: (r, v) => {
    r.grantType = text(v);
  },
  grantType: (r, v) => {
    r.grantType = text(v);
  },
  scope: (r, v) => {
    r.scopes = scopesOf(v);
  },
  scopes: (r, v) => {
    r.scopes = scopesOf(v);
  },
  redirect_uri: (r, v) => {
    r.callbackUri = text(v);
  },
  callbackUrl: (r, v) => {
    r.callbackUri = text(v);
  },
  username: (r, v) => {
    r.resourceOwnerUsername = text(v);
  },
  password: (r, v) => {
    r.resourceOwnerPassword = text(v);
  },
  refresh_token: (r, v) => {
    r.refreshToken = text(v);
  },
  refreshToken: (r, v) => {
    r.refreshToken = text(v);
  },
  validity_period: (r, v) => {
    r.validityPeriodSeconds = validity(v);
  },
  validityPeriod: (r, v) => {
    r.validityPeriodSeconds = validity(v);
  },
  tokenToRevoke: (r, v) => {
    r.tokenToRevoke = text(v);
  },
  token_to_revoke: (r, v) => {
    r.tokenToRevoke = text(v);
  },
};

function validity(value: unknown): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw InvalidArgumentError.field("json.validityPeriod", "must be a non-negative integer of seconds");
  return n;
}

/** How deeply BuildAccessTokenRequestFromJson's JSON may nest (a request's parameters are flat; 32 is room to spare). */
export const MAX_JSON_DEPTH = 32;
/** A member name that would set an object's prototype rather than a member of it. */
const PROTOTYPE_KEYS = new Set(["__proto__"]);

/** BuildAccessTokenRequestFromJson: the members of a JSON object merged into a request. */
export function buildFromJson(json: string, base: AccessTokenRequest = emptyTokenRequest()): AccessTokenRequest {
  // Measured before parsing: JSON.parse and JSON.stringify recurse, and a 200k-deep document
  // would exhaust the stack (an INTERNAL error) where the caller's mistake is the answer.
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) throw InvalidArgumentError.field("json", `must not nest deeper than ${MAX_JSON_DEPTH} levels`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw InvalidArgumentError.field("json", "is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw InvalidArgumentError.field("json", "must be a JSON object");
  const request: AccessTokenRequest = { ...base, scopes: [...base.scopes], requestParameters: { ...base.requestParameters } };
  for (const [key, value] of Object.entries(parsed)) {
    if (PROTOTYPE_KEYS.has(key)) throw InvalidArgumentError.field(`json.${key}`, "is not an allowed member name");
    if (value === null) continue;
    const set = Object.hasOwn(FIELDS, key) ? FIELDS[key] : undefined;
    if (set) set(request, value);
    else request.requestParameters[key] = text(value);
  }
  return request;
}

/** Whether brackets outside strings nest deeper than `max` (a scan, no recursion). */
function nestsDeeperThan(json: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** BuildAccessTokenRequestFromOAuthApp: a client-credentials request for the application's client. */
export function buildFromOAuthApp(
  app: Pick<OAuthClient, "consumerKey" | "consumerSecret" | "callbackUrls">,
  base: AccessTokenRequest = emptyTokenRequest(),
): AccessTokenRequest {
  const violations = [];
  if (!app.consumerKey) violations.push({ field: "application.consumer_key", description: "is required" });
  if (!app.consumerSecret) violations.push({ field: "application.consumer_secret", description: "is required" });
  if (violations.length > 0) throw new InvalidArgumentError(violations);
  return {
    ...base,
    clientId: app.consumerKey,
    clientSecret: app.consumerSecret,
    grantType: base.grantType || "client_credentials",
    callbackUri: base.callbackUri || (app.callbackUrls[0] ?? ""),
  };
}
