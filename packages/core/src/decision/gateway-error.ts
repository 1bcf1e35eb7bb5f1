/**
 * What an API caller gets when a gateway refuses a call: WSO2's gateway error body, with the HTTP
 * status and headers that go with each code. One function, so the gateway library's middleware,
 * forward auth and Envoy's ext_authz answer alike.
 */

/** WSO2's message per code (org.wso2.carbon.apimgt.gateway APISecurityConstants). */
const MESSAGES: Record<number, string> = {
  900900: "Unclassified Authentication Failure",
  900901: "Invalid Credentials",
  900902: "Missing Credentials",
  900905: "Incorrect Access Token Type is provided",
  900906: "No matching resource found in the API for the given request",
  900907: "The requested API is temporarily blocked",
  900908: "Resource forbidden",
  900909: "The subscription to the API is inactive",
  900910: "The access token does not allow you to access the requested resource",
  900912: "Key Manager not available",
};

/** WSO2's description where it has one, else the message: what to do about it. */
const DESCRIPTIONS: Record<number, string> = {
  900901: "Make sure you have provided the correct security credentials",
  900902: "Make sure your API invocation call has a header: Authorization: Bearer ACCESS_TOKEN",
  900906: "Check the API documentation and add a proper REST resource path to the invocation URL",
  900907: "API Subscription is blocked",
  900912: "The key manager that issued the access token cannot be reached; try again later",
};

export interface GatewayErrorBody {
  code: number;
  message: string;
  description: string;
}

export interface GatewayError {
  /** The HTTP status. */
  status: number;
  /** Lower-case names: content-type, and www-authenticate where RFC 6750 asks for it. */
  headers: Record<string, string>;
  body: GatewayErrorBody;
}

/**
 * The refusal for a status code, with `description` (a decision's) or WSO2's default one.
 *
 * HTTP status: 401 for the credential errors (900901 invalid or expired token, 900902 no token);
 * 403 for every other refusal (the call is not allowed: wrong token type, no such resource,
 * blocked, forbidden, inactive subscription, scope). Two codes are failures rather than refusals
 * and say so: 503 for 900912, the token's key manager is unreachable (the caller may retry), and
 * 500 for 900900, an unexpected failure.
 *
 * WWW-Authenticate (RFC 6750 §3): `Bearer error="invalid_token"` for both credential errors (the
 * gateways' contract; a missing token is refused like an invalid one), `Bearer
 * error="insufficient_scope"` for 900910.
 */
export function gatewayError(code: number, description?: string): GatewayError {
  const headers: Record<string, string> = { "content-type": "application/json; charset=utf-8" };
  const challenge = CHALLENGES[code];
  if (challenge) headers["www-authenticate"] = challenge;
  const message = MESSAGES[code] ?? (MESSAGES[900900] as string);
  return {
    status: httpStatus(code),
    headers,
    body: { code, message, description: description || DESCRIPTIONS[code] || message },
  };
}

const CHALLENGES: Record<number, string> = {
  900901: 'Bearer error="invalid_token"',
  900902: 'Bearer error="invalid_token"',
  900910: 'Bearer error="insufficient_scope"',
};

/** The HTTP status that goes with a gateway status code (see gatewayError). */
export function httpStatus(code: number): number {
  switch (code) {
    case 0:
      return 200;
    case 900901:
    case 900902:
      return 401;
    case 900912:
      return 503;
    case 900900:
      return 500;
    default:
      return code >= 900900 && code < 901000 ? 403 : 500;
  }
}
