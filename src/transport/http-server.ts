import * as http from "node:http";
import * as https from "node:https";
import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { toConnectError } from "./error-mapping.js";
import type { ServiceRegistration } from "./grpc-server.js";

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface HttpServerOptions {
  logger: Logger;
  services: readonly ServiceRegistration[];
  /** Other endpoints (REST, OAuth2); each returns false when the path is not its own. */
  routes: readonly RouteHandler[];
  tls: { cert: Buffer; key: Buffer } | undefined;
  maxMessageBytes: number;
  isReady: () => boolean;
}

/**
 * The HTTP port: Connect (JSON and binary) and gRPC-Web for the same services as the gRPC port,
 * `GET /healthz`, and the REST and OAuth2 endpoints.
 */
export function createHttpServer(options: HttpServerOptions): http.Server {
  const errors: Interceptor = (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw toConnectError(err, options.logger, req.url);
    }
  };
  const rpc = connectNodeAdapter({
    routes: (router) => {
      for (const { service, impl } of options.services) router.service(service, impl as never);
    },
    interceptors: [errors],
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    fallback: (req, res) => {
      // This server is HTTP/1.1 only, so requests are never HTTP/2 ones.
      void routeFallback(req as http.IncomingMessage, res as http.ServerResponse, options);
    },
  });
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => rpc(req, res);
  return options.tls ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler) : http.createServer(handler);
}

async function routeFallback(req: http.IncomingMessage, res: http.ServerResponse, options: HttpServerOptions): Promise<void> {
  try {
    if (req.url === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const ready = options.isReady();
      sendJson(res, ready ? 200 : 503, { status: ready ? "SERVING" : "NOT_SERVING" });
      return;
    }
    for (const route of options.routes) {
      if (await route(req, res)) return;
    }
    sendJson(res, 404, { code: 404, message: "Not Found", description: "no such endpoint" });
  } catch (err) {
    const ce = toConnectError(err, options.logger, req.url ?? "");
    if (!res.headersSent) sendJson(res, 500, { code: 500, message: "Internal Server Error", description: ce.rawMessage });
    else res.destroy();
  }
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
    ...headers,
  });
  res.end(text);
}

export function listen(server: http.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve(typeof address === "object" && address ? address.port : port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish, then closes idle and remaining connections. */
export function closeHttp(server: http.Server, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
