import type { DescService } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { HealthImplementation } from "grpc-health-check";
import type { Logger } from "pino";
import { type GrpcHandlerOptions, grpcHandlers, grpcServiceDefinition } from "./grpc-service.js";
import { addReflection } from "./reflection.js";

export interface ServiceRegistration<S extends DescService = DescService> {
  service: S;
  impl: Partial<ServiceImpl<S>>;
}

export interface GrpcServerOptions extends GrpcHandlerOptions {
  logger: Logger;
  services: readonly ServiceRegistration[];
  credentials: grpc.ServerCredentials;
  maxMessageBytes: number;
}

/**
 * The grpc.health.v1 service name that answers liveness: SERVING while the process runs, whatever
 * the database (readiness is the overall "" and each service's name).
 */
export const LIVENESS_SERVICE = "liveness";

/** The gateways' port: grpc-js with the protobuf-es codecs, reflection and grpc.health.v1. */
export class GrpcServer {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  private readonly serviceNames: string[];

  constructor(private readonly options: GrpcServerOptions) {
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": options.maxMessageBytes,
      "grpc.max_send_message_length": options.maxMessageBytes,
      // No channelz service is exposed; its per-call bookkeeping would be pure cost.
      "grpc.enable_channelz": 0,
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
  }

  /** Binds and starts; resolves to the bound port (useful with port 0). */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${formatHost(host)}:${port}`, this.options.credentials, (err, bound) => {
        if (err) return reject(err);
        this.setServing(true);
        resolve(bound);
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
      const timer = setTimeout(() => this.server.forceShutdown(), graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}

function formatHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}
