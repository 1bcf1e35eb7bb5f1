import type * as http from "node:http";
import { STATUS_CODES } from "node:http";
import type { TLSSocket } from "node:tls";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createConnectRouter, createContextKey, createContextValues, type Interceptor } from "@connectrpc/connect";
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import type { CallAuthorizer, CallCredentials } from "../auth/call-authorizer.js";
import { CALL_ORIGIN } from "../auth/call-origin.js";
import { PRINCIPAL, type Principal } from "../auth/principal.js";
import { type AuditLog, isChange } from "./audit-log.js";
import type { ClientAddresses } from "./client-address.js";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { httpStatusOf, toConnectError } from "./error-mapping.js";
import type { ServiceRegistration } from "./grpc-server.js";
import { rejectUndecodableBodies } from "./undecodable-bodies.js";
import { type HttpConnectionLimits, HttpPort, type RequestHandler } from "./http-port.js";
import { errorResponse, RPC_OUTCOME, type RpcOutcome, wrapHandler } from "./universal-handler.js";
import type { Metrics, RequestMeter } from "../observability/metrics.js";
import { codeFromHttpStatus } from "@connectrpc/connect/protocol-connect";
import { GRPC_CODE_NAMES } from "./grpc-service.js";
import { routeLabel } from "./route-labels.js";
import { type AccessLog, callerOf, REQUEST_ID_HEADER } from "../observability/access-log.js";
import { context } from "@opentelemetry/api";
import type { Tracing } from "../observability/tracing.js";

export type RouteHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean | Promise<boolean>;

export interface HttpServerOptions {
  logger: Logger;
  services: readonly ServiceRegistration[];
  /** Other endpoints (REST, OAuth2); each returns false when the path is not its own. */
  routes: readonly RouteHandler[];
  tls: { cert: Buffer; key: Buffer; clientCa: Buffer | undefined } | undefined;
  maxMessageBytes: number;
  /** Connection and stream bounds; DEFAULT_HTTP_CONNECTION_LIMITS when absent. */
  connections?: HttpConnectionLimits;
  isReady: () => boolean;
  authorizer: CallAuthorizer;
  audit: AuditLog;
  addresses: ClientAddresses;
  /** Requests by method or route and code, with their durations; `GET /metrics` when `serveMetrics`. */
  metrics?: Metrics;
  /** Whether this port answers `GET /metrics` (false when metrics have a port of their own, or are off). */
  serveMetrics?: boolean;
  /** One line per request. */
  access?: AccessLog;
  /** A span per request, child of the caller's traceparent. */
  tracing?: Tracing;
}

/** The verified client certificate of the connection, read only when a call has no token. */
const CERTIFICATE = createContextKey<CallCredentials["certificate"]>(undefined, { description: "client certificate" });

/**
 * The HTTP port: Connect (JSON and binary) and gRPC-Web for the same services as the gRPC port,
 * `GET /healthz`, and the REST and OAuth2 endpoints.
 */
export function createHttpServer(options: HttpServerOptions): HttpPort {
  const mapped = (err: unknown, req: Parameters<Parameters<Interceptor>[0]>[0]) => {
    const ce = toConnectError(err, options.logger, req.url);
    const outcome = req.contextValues.get(RPC_OUTCOME);
    if (outcome) outcome.code = ce.code;
    return ce;
  };
  const errors: Interceptor = (next) => async (req) => {
    try {
      const res = await next(req);
      // A stream's errors come while its messages are read (Watch): mapped alike.
      if (!res.stream) return res;
      return { ...res, message: mapStreamErrors(res.message, (err) => mapped(err, req)) };
    } catch (err) {
      throw mapped(err, req);
    }
  };
  const authorizers = new Map<DescMethod, (c: CallCredentials) => Principal | Promise<Principal>>();
  for (const { service } of options.services) {
    for (const method of service.methods) authorizers.set(method, options.authorizer.forMethod(service, method));
  }
  // The caller was authenticated before the body was read (authenticateFirst, below); the audit
  // of successful changes, as on the gRPC port (grpc-service.ts).
  const auth: Interceptor = (next) => async (req) => {
    const principal = req.contextValues.get(PRINCIPAL);
    if (!principal) throw new Error(`${req.url} reached the service unauthenticated`);
    const res = await next(req);
    if (isChange(req.method)) options.audit.record(principal, req.method, req.message);
    return res;
  };
  const router = createConnectRouter({
    interceptors: [errors, auth],
    readMaxBytes: options.maxMessageBytes,
    writeMaxBytes: options.maxMessageBytes,
    acceptCompression: [compressionGzip, compressionBrotli],
  });
  for (const { service, impl } of options.services) router.service(service, impl as never);
  const rpcs = new Map<string, { handle: UniversalHandler; meter: RequestMeter | undefined; procedure: string }>();
  for (const h of router.handlers) {
    const authorize = authorizers.get(h.method);
    if (!authorize) throw new Error(`no authorizer for ${h.requestPath}`);
    rpcs.set(h.requestPath, {
      // A stream's messages are decoded by connect-es as they come; a unary body is checked first.
      handle: authenticateFirst(
        h.method.methodKind === "unary" ? rejectUndecodableBodies(h, options.maxMessageBytes, options.logger) : streamingOnly(h),
        authorize,
        options.logger,
      ),
      meter: options.metrics?.requests("http", h.service.typeName, h.method.name),
      procedure: `${h.service.typeName}/${h.method.name}`,
    });
  }
  const routeMeters = new Map<string, RequestMeter>();
  const routeMeter = (label: string): RequestMeter | undefined => {
    if (!options.metrics) return undefined;
    let meter = routeMeters.get(label);
    if (!meter) {
      meter = options.metrics.requests("http", "http", label);
      routeMeters.set(label, meter);
    }
    return meter;
  };
  // Traced: each request runs in its span's context, so its database queries are its children.
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url?.split("?", 2)[0] ?? "";
    const rpc = rpcs.get(path);
    const route = rpc ? undefined : routeLabel(path);
    const traced = options.tracing?.serverSpan(
      rpc ? rpc.procedure : `${req.method} ${route}`,
      req.headers,
      rpc
        ? { "rpc.system": "connect_rpc", "rpc.service": rpc.handle.service.typeName, "rpc.method": rpc.handle.method.name }
        : { "http.request.method": req.method ?? "", "http.route": route },
    );
    if (!traced) return serve(req, res);
    res.once("close", () => options.tracing?.end(traced.span, res.writableFinished && res.statusCode < 500, { "http.response.status_code": res.statusCode }));
    context.with(traced.context, serve, undefined, req, res);
  };
  // connect-node's adapter, with the RPC handlers wrapped (undecodable-bodies.ts).
  const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const path = req.url?.split("?", 2)[0] ?? "";
    const rpc = rpcs.get(path);
    const access = options.access?.enabled ? options.access : undefined;
    const requestId = access ? access.requestId(req.headers[REQUEST_ID_HEADER]) : "";
    if (access) res.setHeader(REQUEST_ID_HEADER, requestId);
    if (!rpc) {
      const route = routeLabel(path);
      const meter = routeMeter(route);
      if (meter || access) {
        const started = performance.now();
        res.once("close", () => {
          const status = res.writableFinished ? String(res.statusCode) : "aborted";
          meter?.done(started, status);
          access?.write({ port: "http", call: `${req.method} ${route}`, code: status, ms: performance.now() - started, caller: callerOf(req), requestId });
        });
      }
      // On HTTP/2, its compatibility objects stand in for HTTP/1.1's (http-port.ts).
      void routeFallback(req, res, options);
      return;
    }
    const outcome: RpcOutcome = { code: 0 };
    const meter = rpc.meter;
    if (meter || access) {
      const started = performance.now();
      // connect-node's adapter never settles its promise on HTTP/1.1 (it waits for an "end" event
      // a ServerResponse does not emit): the response's close is the end of the call.
      res.once("close", () => {
        const code = res.writableFinished ? (GRPC_CODE_NAMES[outcome.code] ?? "UNKNOWN") : "CANCELLED";
        meter?.done(started, code);
        access?.write({ port: "http", call: rpc.procedure, code, ms: performance.now() - started, caller: contextValues.get(PRINCIPAL)?.clientId, requestId });
      });
    }
    const socket = req.socket as TLSSocket;
    const contextValues = createContextValues()
      .set(CERTIFICATE, options.tls?.clientCa && socket.authorized ? () => socket.getPeerCertificate() : undefined)
      .set(CALL_ORIGIN, { address: () => requestAddress(req, options.addresses) })
      .set(RPC_OUTCOME, outcome);
    rpc
      .handle(universalRequestFromNodeRequest(req, res, undefined, contextValues))
      .then((uRes) => {
        // An error connect-es answered itself (a malformed body, an oversized message): its HTTP status says which.
        if (outcome.code === 0 && uRes.status !== 200) outcome.code = codeFromHttpStatus(uRes.status);
        return universalResponseToNodeResponse(uRes, res);
      })
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        options.logger.error({ err: reason, rpc: rpc.handle.requestPath }, "rpc handler failed");
        res.destroy();
      });
  };
  // HTTP/1.1 and HTTP/2 alike: Http2ServerRequest/Response offer what the handler uses of
  // IncomingMessage/ServerResponse (headers, url, socket, status, setHeader, close events).
  return new HttpPort(handler as RequestHandler, options.tls, options.connections);
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, map: (err: unknown) => ConnectError): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (err) {
    throw map(err);
  }
}

/**
 * Authentication and the scope check from the request's headers, before anything reads its body:
 * an unauthenticated caller costs no body parsing, decoding or validation, and is answered in
 * its protocol at once. The principal goes into the context for the service.
 */
function authenticateFirst(handler: UniversalHandler, authorize: (c: CallCredentials) => Principal | Promise<Principal>, logger: Logger): UniversalHandler {
  return wrapHandler(handler, async (req) => {
    try {
      const principal = await authorize({ authorization: req.header.get("authorization") ?? undefined, certificate: req.contextValues?.get(CERTIFICATE) });
      req.contextValues?.set(PRINCIPAL, principal);
    } catch (err) {
      return errorResponse(req, toConnectError(err, logger, handler.requestPath));
    }
    return handler(req);
  });
}

/**
 * A streaming method asked with a unary protocol (Connect's application/json or application/proto,
 * gRPC-Web): the caller's mistake, INVALID_ARGUMENT saying what to use (connect-es would answer
 * 505 or 415 without a word).
 */
function streamingOnly(handler: UniversalHandler): UniversalHandler {
  const name = `${handler.service.typeName}/${handler.method.name}`;
  return wrapHandler(handler, async (req) => {
    const type = (req.header.get("content-type") ?? "").toLowerCase();
    if (type.startsWith("application/connect+") || (type.startsWith("application/grpc") && !type.startsWith("application/grpc-web"))) return handler(req);
    return errorResponse(
      req,
      new ConnectError(
        `${name} is a streaming method: call it with the Connect streaming protocol (application/connect+proto or +json; a bidi stream needs HTTP/2) or gRPC`,
        Code.InvalidArgument,
      ),
    );
  });
}

async function routeFallback(req: http.IncomingMessage, res: http.ServerResponse, options: HttpServerOptions): Promise<void> {
  try {
    // Readiness: NOT_SERVING while starting, stopping or without a database that answers.
    if (req.url === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      const ready = options.isReady();
      sendJson(res, ready ? 200 : 503, { status: ready ? "SERVING" : "NOT_SERVING" });
      return;
    }
    // Liveness: the process answers; nothing else is checked (restarting it cures no database).
    if (req.url === "/livez" && (req.method === "GET" || req.method === "HEAD")) {
      sendJson(res, 200, { status: "SERVING" });
      return;
    }
    if (options.serveMetrics && options.metrics && (await serveMetrics(req, res, options.metrics))) return;
    for (const route of options.routes) {
      if (await route(req, res)) return;
    }
    sendJson(res, 404, { code: 404, message: "Not Found", description: "no such endpoint" });
  } catch (err) {
    const ce = toConnectError(err, options.logger, req.url ?? "");
    const status = httpStatusOf(ce.code);
    if (!res.headersSent) sendJson(res, status, { code: status, message: STATUS_CODES[status] ?? "Error", description: ce.rawMessage });
    else res.destroy();
  }
}

/** `GET /metrics`: the Prometheus text format. False for any other request. */
export async function serveMetrics(req: http.IncomingMessage, res: http.ServerResponse, metrics: Metrics): Promise<boolean> {
  if ((req.url ?? "").split("?", 1)[0] !== "/metrics") return false;
  if (req.method !== "GET" && req.method !== "HEAD") {
    sendJson(res, 405, { code: 405, message: "Method Not Allowed", description: "use GET" }, { allow: "GET, HEAD" });
    return true;
  }
  const scraped = await metrics.scrape();
  if (!scraped) return false;
  res.writeHead(200, { "content-type": scraped.contentType, "content-length": Buffer.byteLength(scraped.body), "cache-control": "no-store" });
  res.end(req.method === "HEAD" ? undefined : scraped.body);
  return true;
}

/** The address an HTTP request comes from (transport/client-address.ts). */
export function requestAddress(req: http.IncomingMessage, addresses: ClientAddresses): string {
  const forwarded = req.headers[addresses.header];
  return addresses.resolve(req.socket.remoteAddress, Array.isArray(forwarded) ? forwarded.join(",") : forwarded);
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
    // A keep-alive connection whose request finishes during the stop would otherwise stay open
    // until its keep-alive timeout (5 s), and the stop with it: close connections as they go idle.
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    server.close(() => {
      clearTimeout(timer);
      clearInterval(idle);
      resolve();
    });
    server.closeIdleConnections();
  });
}
