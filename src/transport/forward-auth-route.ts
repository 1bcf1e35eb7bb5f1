/**
 * Forward auth on the HTTP port, for gateways that ask over HTTP before passing a request on:
 * nginx `auth_request`, Caddy `forward_auth`, Traefik ForwardAuth.
 *
 *   <any method> /gateway/forward-auth
 *
 * The request to check is described by headers the gateway sets: X-Original-Method and
 * X-Original-URI (nginx, by convention), or X-Forwarded-Method and X-Forwarded-Uri (Caddy,
 * Traefik); the API caller's token is read from the configured token header (Authorization:
 * Bearer), which these gateways pass on. X-Forwarded-Host is not used: APIs are told apart by
 * context and version, not by host.
 *
 * The calling gateway authenticates with its own credentials, never the API caller's, in the
 * configured caller header (`X-Km-Authorization: Bearer <value>`): a shared secret whose SHA-256 is
 * configured (`gateway.caller_secrets_sha256`; static, as a gateway's configuration file is), or
 * a token of a system client with scope km:gateway (as for ValidateToken; it expires within
 * `validity.system_token`); or with a client certificate verified against the configured client
 * CA (HTTPS with `tls.client_ca_file`).
 *
 * Answers: 200 with the upstream headers (consumer key, application, subscription tier, key type,
 * end user; one without a value is sent empty) when allowed; when refused, the status, headers and body of WSO2's gateway error
 * (401 with `WWW-Authenticate: Bearer error="invalid_token"` for 900901/900902, 403 for the other
 * refusals, 503 for 900912), the code also in the code header. A gateway that is not
 * authenticated, or that leaves out the original URI, gets 500 with a 900900 body saying what is
 * wrong: a misconfigured gateway, not the API caller's fault (nginx answers any other status than
 * 2xx, 401 and 403 with 500 anyway).
 */
import type * as http from "node:http";
import type { TLSSocket } from "node:tls";
import { gatewayError } from "@keymanager/core";
import type { Logger } from "pino";
import type { CallAuthorizer } from "../auth/call-authorizer.js";
import type { GatewaySecrets } from "../auth/gateway-secrets.js";
import { SCOPES } from "../auth/scopes.js";
import type { GatewaySettings } from "../config/config.js";
import { DomainError } from "../domain/errors.js";
import type { GatewayAnswer, GatewayCheck, GatewayRequest } from "../gateway/gateway-check.js";
import type { RouteHandler } from "./http-server.js";

export const FORWARD_AUTH_PATH = "/gateway/forward-auth";

interface Deps {
  gateway: GatewayCheck;
  authorizer: CallAuthorizer;
  /** Shared secrets a gateway may send instead of a token. */
  secrets: GatewaySecrets;
  settings: GatewaySettings;
  /** Whether callers may authenticate with a client certificate (mTLS configured). */
  clientCertificates: boolean;
  logger: Logger;
}

export function forwardAuthRoute(deps: Deps): RouteHandler {
  const authorize = deps.authorizer.forScope(SCOPES.gateway, FORWARD_AUTH_PATH);
  return async (req, res) => {
    if ((req.url ?? "").split("?", 1)[0] !== FORWARD_AUTH_PATH) return false;
    const socket = req.socket as TLSSocket;
    try {
      const credential = single(req.headers[deps.settings.callerHeader]);
      if (!deps.secrets.authenticate(credential))
        await authorize({
          authorization: credential,
          certificate: deps.clientCertificates && socket.authorized ? () => socket.getPeerCertificate() : undefined,
        });
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      deps.logger.warn({ reason: err.message, path: FORWARD_AUTH_PATH }, "forward auth: gateway not authenticated");
      misconfigured(
        res,
        `the gateway is not authenticated to the key manager: ${err.message} (send \`${deps.settings.callerHeader}: Bearer <secret>\` with a secret configured in gateway.caller_secrets_sha256, or a token of a system client with scope ${SCOPES.gateway}, or a client certificate)`,
      );
      return true;
    }
    const request = originalRequest(req);
    if (typeof request === "string") {
      misconfigured(res, request);
      return true;
    }
    const answer = deps.gateway.check(request);
    send(res, answer instanceof Promise ? await answer : answer, deps.settings.tokenHeader);
    return true;
  };
}

/** The request the gateway asks about, or what is missing. */
function originalRequest(req: http.IncomingMessage): GatewayRequest | string {
  const h = req.headers;
  const uri = single(h["x-original-uri"]) ?? single(h["x-forwarded-uri"]);
  const method = single(h["x-original-method"]) ?? single(h["x-forwarded-method"]);
  if (!uri) return "forward auth needs the original request's URI in X-Original-URI (nginx) or X-Forwarded-Uri (Caddy, Traefik)";
  if (!method) return "forward auth needs the original request's method in X-Original-Method (nginx) or X-Forwarded-Method (Caddy, Traefik)";
  return { method, path: pathOf(uri), header: (name) => single(h[name]) };
}

/** An absolute URI's path and query; a path as it is. */
function pathOf(uri: string): string {
  if (uri.startsWith("/")) return uri;
  try {
    const url = new URL(uri);
    return `${url.pathname}${url.search}`;
  } catch {
    return uri;
  }
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function send(res: http.ServerResponse, answer: GatewayAnswer, tokenHeader: string): void {
  const refusal = answer.refusal;
  if (!refusal) {
    const headers: Record<string, string> = { "cache-control": "no-store", "content-length": "0" };
    // Every configured upstream header, empty when there is no value (an application token's end
    // user): a gateway copying it then sends none (nginx), or copies nothing (Caddy 2.6 would
    // copy its unresolved placeholder for a header missing from the answer).
    for (const name of answer.remove) if (name !== tokenHeader) headers[name] = "";
    for (const [name, value] of answer.upstream) headers[name] = value;
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const body = JSON.stringify(refusal.body);
  res.writeHead(refusal.status, { ...refusal.headers, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function misconfigured(res: http.ServerResponse, description: string): void {
  const error = gatewayError(900900, description);
  const body = JSON.stringify(error.body);
  res.writeHead(500, { ...error.headers, "cache-control": "no-store", "content-length": Buffer.byteLength(body) });
  res.end(body);
}
