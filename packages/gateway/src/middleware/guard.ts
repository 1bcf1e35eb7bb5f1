import type { IncomingHttpHeaders } from "node:http";
import { type GatewayError, gatewayError } from "@keymanager/core";
import type { GatewayAnswer } from "../answer.js";
import { GatewayRequestError, type GatewayValidator } from "../validator.js";

/** Upstream header names for what an allowed call carries on; "" sends none. */
export interface UpstreamHeaderNames {
  consumerKey: string;
  applicationId: string;
  applicationName: string;
  applicationTier: string;
  subscriptionTier: string;
  keyType: string;
  endUser: string;
}

/** The key manager's forward auth and ext_authz send the same names by default. */
export const DEFAULT_UPSTREAM_HEADERS: UpstreamHeaderNames = {
  consumerKey: "x-consumer-key",
  applicationId: "x-application-id",
  applicationName: "x-application-name",
  applicationTier: "x-application-tier",
  subscriptionTier: "x-subscription-tier",
  keyType: "x-key-type",
  endUser: "x-end-user",
};

/** The API a request is for. */
export interface ApiRef {
  context: string;
  version: string;
}

/** What a request looks like to the guard (node:http's IncomingMessage, Fastify's request). */
export interface GuardedRequest {
  method?: string;
  /** The raw request target ("/pizzashack/1.0.0/menu?x=1"). */
  url?: string;
  headers: IncomingHttpHeaders;
}

export interface GatewayGuardOptions<R extends GuardedRequest = GuardedRequest> {
  validator: GatewayValidator;
  /** The API the requests are for (a gateway mounted per API), or a function finding it; undefined: 900908. */
  api: ApiRef | ((request: R) => ApiRef | undefined);
  /** The header carrying the caller's token: `Bearer <token>` (default "authorization"). */
  tokenHeader?: string;
  /** Names of the headers passed to the upstream; defaults DEFAULT_UPSTREAM_HEADERS. */
  upstreamHeaders?: Partial<UpstreamHeaderNames>;
  /** Whether the caller's token header is taken off before the upstream (default false). */
  removeTokenHeader?: boolean;
}

/** The guard's verdict on a request. */
export type GuardResult = { allowed: true; answer: GatewayAnswer } | { allowed: false; answer: GatewayAnswer | undefined; refusal: GatewayError };

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/**
 * The check every middleware makes: the bearer token, ValidateToken's answer for the request's
 * API, path and method, and either the upstream headers set on the request (the caller's own
 * values of those headers always taken off first, so they cannot be forged) or WSO2's gateway
 * error for the caller.
 */
export function createGatewayGuard<R extends GuardedRequest>(options: GatewayGuardOptions<R>): (request: R) => Promise<GuardResult> {
  const tokenHeader = (options.tokenHeader ?? "authorization").toLowerCase();
  const names = { ...DEFAULT_UPSTREAM_HEADERS, ...options.upstreamHeaders };
  const upstream = (Object.keys(names) as (keyof UpstreamHeaderNames)[]).filter((k) => names[k] !== "").map((k) => [k, names[k].toLowerCase()] as const);
  if (upstream.some(([, name]) => name === tokenHeader)) throw new TypeError("createGatewayGuard: an upstream header cannot be the token header");
  const findApi = typeof options.api === "function" ? options.api : () => options.api as ApiRef;

  return async (request) => {
    for (const [, name] of upstream) delete request.headers[name];
    const api = findApi(request);
    const path = request.url ?? "/";
    if (!api) return refused(undefined, gatewayError(900908, "no API is served at this path"));
    let answer: GatewayAnswer;
    try {
      answer = await options.validator.validate({
        context: api.context,
        version: api.version,
        token: bearerToken(request.headers[tokenHeader]),
        path,
        verb: request.method ?? "GET",
      });
    } catch (err) {
      if (!(err instanceof GatewayRequestError)) throw err;
      return refused(undefined, gatewayError(900900, "the gateway could not check this request"));
    }
    if (!answer.authorized) return refused(answer, gatewayError(answer.statusCode, answer.statusDescription));
    for (const [field, name] of upstream) {
      const value = upstreamValue(answer, field);
      if (value !== "") request.headers[name] = value;
    }
    if (options.removeTokenHeader) delete request.headers[tokenHeader];
    return { allowed: true, answer };
  };
}

function refused(answer: GatewayAnswer | undefined, refusal: GatewayError): GuardResult {
  return { allowed: false, answer, refusal };
}

function bearerToken(value: string | string[] | undefined): string {
  if (typeof value !== "string") return "";
  return BEARER.exec(value.trim())?.[1] ?? "";
}

function upstreamValue(a: GatewayAnswer, field: keyof UpstreamHeaderNames): string {
  switch (field) {
    case "consumerKey":
      return a.consumerKey;
    case "applicationId":
      return a.applicationId;
    case "applicationName":
      return a.applicationName;
    case "applicationTier":
      return a.applicationTier;
    case "subscriptionTier":
      return a.subscriptionTier;
    case "keyType":
      return a.keyType;
    case "endUser":
      return a.endUserName;
  }
}
