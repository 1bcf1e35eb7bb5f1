import type { IncomingMessage, ServerResponse } from "node:http";
import type { GatewayError } from "@keymanager/core";
import { createGatewayGuard, type GatewayGuardOptions } from "./guard.js";

/**
 * For node:http servers: `await guard(req, res)` is true when the call may go on (the upstream
 * headers are set on req.headers), false when the refusal has been sent.
 */
export function createNodeGuard(options: GatewayGuardOptions<IncomingMessage>): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const guard = createGatewayGuard(options);
  return async (req, res) => {
    const result = await guard(req);
    if (result.allowed) return true;
    sendRefusal(res, result.refusal);
    return false;
  };
}

/** Express / Connect-style `(req, res, next)`: next() when allowed, the refusal sent otherwise, next(err) on failure. */
export function gatewayMiddleware(
  options: GatewayGuardOptions<IncomingMessage>,
): (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void {
  const guard = createNodeGuard(options);
  return (req, res, next) => {
    guard(req, res).then((allowed) => {
      if (allowed) next();
    }, next);
  };
}

/** WSO2's gateway error body with its status and headers. */
export function sendRefusal(res: ServerResponse, refusal: GatewayError): void {
  const body = JSON.stringify(refusal.body);
  res.writeHead(refusal.status, { ...refusal.headers, "content-length": Buffer.byteLength(body) });
  res.end(body);
}
