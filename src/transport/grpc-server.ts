import * as http2 from "node:http2";
import * as net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { DEFAULT_STREAM_WRITE_AHEAD } from "../config/schema.js";
import { type GrpcHandlerOptions, grpcHandlers, grpcServiceDefinition } from "./grpc-service.js";
import { writeAheadInterceptor, type WriteAheadStats } from "./grpc-write-ahead.js";
import { addReflection } from "./reflection.js";

export interface ServiceRegistration<S extends DescService = DescService> {
  service: S;
  impl: Partial<ServiceImpl<S>>;
}

/** The bounds of the port's connections, streams and pings (README, Limits; config `[key_manager.grpc]`). */
export interface GrpcConnectionLimits {
  /** Connections open at once; more are closed as they arrive. */
  maxConnections: number;
  /** A connection without calls is sent GOAWAY after this (grpc.max_connection_idle_ms). */
  idleTimeoutMs: number;
  /** A connection is sent GOAWAY after this, 0: never (grpc.max_connection_age_ms), ±10% jitter. */
  maxConnectionAgeMs: number;
  /** Its calls then have this long before it is closed (grpc.max_connection_age_grace_ms). */
  maxConnectionAgeGraceMs: number;
  /** Calls of one connection at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
  maxConcurrentStreams: number;
  /** Pings closer together than this are strikes (grpc.http2.min_ping_interval_without_data_ms). */
  keepaliveMinPingIntervalMs: number;
  /** Whether pings are allowed while no call is open (grpc.keepalive_permit_without_calls). */
  keepalivePermitWithoutCalls: boolean;
  /** Strikes allowed; the next one closes the connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings". */
  keepaliveMaxPingStrikes: number;
}

export const DEFAULT_GRPC_CONNECTION_LIMITS: GrpcConnectionLimits = {
  maxConnections: 4096,
  idleTimeoutMs: 120_000,
  maxConnectionAgeMs: 0,
  maxConnectionAgeGraceMs: 30_000,
  maxConcurrentStreams: 100,
  keepaliveMinPingIntervalMs: 300_000,
  keepalivePermitWithoutCalls: false,
  keepaliveMaxPingStrikes: 2,
};

/** gRPC core's interval for pings while no call is open and pings without calls are not permitted. */
const NO_CALLS_PING_INTERVAL_MS = 2 * 3600_000;

export interface GrpcServerOptions extends GrpcHandlerOptions {
  logger: Logger;
  services: readonly ServiceRegistration[];
  credentials: grpc.ServerCredentials;
  maxMessageBytes: number;
  /** Connection, stream and ping bounds; DEFAULT_GRPC_CONNECTION_LIMITS when absent. */
  connections?: GrpcConnectionLimits;
  /** Answers of a bidi stream written ahead of their writes' completion (grpc-write-ahead.ts); 0 or 1: off. Default DEFAULT_STREAM_WRITE_AHEAD (the configuration schema's). */
  streamWriteAhead?: number;
}

/**
 * The grpc.health.v1 service name that answers liveness: SERVING while the process runs, whatever
 * the database (readiness is the overall "" and each service's name).
 */
export const LIVENESS_SERVICE = "liveness";

/**
 * The gateways' port: grpc-js with the protobuf-es codecs, reflection and grpc.health.v1.
 * The listening socket is this class's (grpc-js has no connection cap): connections are accepted
 * by a net.Server with maxConnections and handed to grpc-js through its connection injector.
 */
export class GrpcServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  /** Connections closed on arrival because `maxConnections` were open. */
  refusedConnections = 0;
  /** Connections closed for pinging too often. */
  pingViolations = 0;
  /** Bidi calls written ahead and corked, or left to plain writes (grpc-js's HTTP/2 stream not found). */
  readonly writeAhead: WriteAheadStats = { corked: 0, plain: 0 };
  private readonly serviceNames: string[];
  private readonly limits: GrpcConnectionLimits;
  private readonly listener: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly injector: grpc.ConnectionInjector;

  constructor(private readonly options: GrpcServerOptions) {
    const limits = options.connections ?? DEFAULT_GRPC_CONNECTION_LIMITS;
    this.limits = limits;
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxMessageBytes,
      "grpc.max_send_message_length": options.maxMessageBytes,
      // No channelz service is exposed; its per-call bookkeeping would be pure cost.
      "grpc.enable_channelz": 0,
      "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
      ...(limits.maxConnectionAgeMs > 0
        ? { "grpc.max_connection_age_ms": limits.maxConnectionAgeMs, "grpc.max_connection_age_grace_ms": limits.maxConnectionAgeGraceMs }
        : {}),
      "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
      interceptors: [writeAheadInterceptor(options.streamWriteAhead ?? DEFAULT_STREAM_WRITE_AHEAD, this.writeAhead, () => this.warnPlainWrites())],
    });
    for (const { service, impl } of options.services) {
      this.server.addService(grpcServiceDefinition(service), grpcHandlers(service, impl, options));
    }
    this.serviceNames = options.services.map((s) => s.service.typeName);
    this.health = new HealthImplementation({
      ...Object.fromEntries(["", ...this.serviceNames].map((n) => [n, "NOT_SERVING"])),
      [LIVENESS_SERVICE]: "SERVING",
    });
    this.health.addToServer(this.server);
    addReflection(
      this.server,
      options.services.map((s) => s.service),
    );
    const before = new Set(http2ServersOf(this.server));
    this.injector = this.server.createConnectionInjector(options.credentials);
    // grpc-js enforces no keepalive policy of its own: its HTTP/2 server's sessions are watched here.
    const created = http2ServersOf(this.server).filter((s) => !before.has(s));
    if (created.length !== 1) throw new Error("@grpc/grpc-js: the connection injector's HTTP/2 server was not found (keepalive enforcement needs it)");
    created[0]?.on("session", (session: http2.ServerHttp2Session) => this.enforceKeepalive(session));
    this.listener = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      this.injector.injectConnection(socket);
    });
    // Above the cap a connection is closed as soon as it is accepted, before any byte is read.
    this.listener.maxConnections = limits.maxConnections;
    this.listener.on("drop", () => {
      this.refusedConnections++;
    });
  }

  /** Binds and starts; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.listener.once("error", reject);
      this.listener.listen(port, host, () => {
        this.listener.off("error", reject);
        this.setServing(true);
        const address = this.listener.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  }

  /** Readiness: the overall status ("") and every service's; liveness is left as it is. */
  setServing(serving: boolean): void {
    const status = serving ? "SERVING" : "NOT_SERVING";
    for (const name of ["", ...this.serviceNames]) this.health.setStatus(name, status);
  }

  /** Stops accepting calls and waits for those in flight, forcing them closed after `graceMs`. */
  close(graceMs: number): Promise<void> {
    this.setServing(false);
    return new Promise((resolve) => {
      let pending = 2;
      const done = () => {
        if (--pending === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        for (const socket of this.sockets) socket.destroy();
      }, graceMs);
      this.listener.close(() => done());
      this.server.tryShutdown(() => {
        for (const socket of this.sockets) socket.destroy();
        done();
      });
    });
  }

  private warnedPlainWrites = false;

  /** Once: a grpc-js whose calls do not hold their HTTP/2 stream where write-ahead looks for it. */
  private warnPlainWrites(): void {
    if (this.warnedPlainWrites) return;
    this.warnedPlainWrites = true;
    this.options.logger.warn("gRPC streams: grpc-js's HTTP/2 stream not found, answers written one at a time (grpc.stream_write_ahead has no effect)");
  }

  /**
   * gRPC's keepalive enforcement (as gRPC core and grpc-go do it): a ping sooner than the minimum
   * interval after the last one, or any but the first while no call is open unless permitted, is
   * a strike; a stream opened clears them; one strike past the allowed closes the connection with
   * GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (grpc clients then ping half as often).
   */
  private enforceKeepalive(session: http2.ServerHttp2Session): void {
    const limits = this.limits;
    let open = 0;
    let lastStream = 0;
    let strikes = 0;
    let lastPing = Number.NEGATIVE_INFINITY;
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      strikes = 0;
      lastStream = Math.max(lastStream, stream.id ?? 0);
      stream.once("close", () => open--);
    });
    session.on("ping", () => {
      const now = performance.now();
      const interval = open === 0 && !limits.keepalivePermitWithoutCalls ? NO_CALLS_PING_INTERVAL_MS : limits.keepaliveMinPingIntervalMs;
      if (now - lastPing < interval) strikes++;
      lastPing = now;
      if (strikes <= limits.keepaliveMaxPingStrikes || session.closed || session.destroyed) return;
      this.pingViolations++;
      this.options.logger.debug({ address: session.socket?.remoteAddress }, "gRPC connection closed: too many pings");
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, lastStream, Buffer.from("too_many_pings"));
      // Not session.close(): it would send a second GOAWAY, NO_ERROR. The frame has gone by then.
      setTimeout(() => session.destroy(), 100).unref();
    });
  }
}

/** grpc-js's HTTP/2 servers (a private field: checked where used, so a grpc-js change fails the start, not silently). */
function http2ServersOf(server: grpc.Server): http2.Http2Server[] {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new Error("@grpc/grpc-js: Server.http2Servers is gone (keepalive enforcement needs it)");
  return [...servers.keys()] as http2.Http2Server[];
}
