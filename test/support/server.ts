import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { type Logger, pino } from "pino";
import { KeyManagerService } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import { App } from "../../src/app.js";
import { SYSTEM_SCOPES } from "../../src/auth/scopes.js";
import type { Clock } from "../../src/domain/clock.js";

export interface TestServer {
  app: App;
  grpcPort: number;
  httpPort: number;
  /** The metrics listener's port, when [metrics] port is set. */
  metricsPort: number | undefined;
  dataDir: string;
  /** A token of a system client holding every scope (admin, store and gateway). */
  token: string;
  /** Generated client over the gRPC protocol to the grpc-js port, with `token`. */
  grpc: Client<typeof KeyManagerService>;
  /** Generated client over the Connect protocol (JSON) to the HTTP port, with `token`. */
  connect: Client<typeof KeyManagerService>;
  /** A generated client of any service; `token: ""` sends no credentials. */
  client<S extends DescService>(service: S, options?: { protocol?: "grpc" | "connect"; token?: string }): Client<S>;
  /** A new system client with these scopes and a token of it. */
  caller(scopes: readonly string[], options?: { subscriber?: string; groupIds?: string[] }): Promise<{ clientId: string; clientSecret: string; token: string }>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a data directory (restart tests); a fresh temporary one otherwise. */
  dataDir?: string;
  configFile?: string;
  databaseUrl?: string;
  clock?: Clock;
  overrides?: Record<string, unknown>;
  logger?: Logger;
}

/** Long enough that tests moving their clock forward keep their callers' tokens. */
const TEST_TOKEN_SECONDS = 300 * 24 * 3600;

export function bearer(token: string): Interceptor {
  return (next) => (req) => {
    if (token !== "") req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** A real server on loopback, ports chosen by the OS. */
export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "km-test-"));
  const app = new App({
    config: {
      file: options.configFile,
      env: {},
      overrides: {
        data_dir: dataDir,
        grpc: { host: "127.0.0.1", port: 0 },
        http: { host: "127.0.0.1", port: 0 },
        log_level: "silent",
        ...(options.databaseUrl ? { database: { url: options.databaseUrl } } : {}),
        ...options.overrides,
        // Test callers' tokens outlive the clock moves of their tests (the default caps them at an hour).
        validity: { system_token: TEST_TOKEN_SECONDS, ...(options.overrides?.validity as Record<string, unknown> | undefined) },
      },
    },
    logger: options.logger ?? pino({ level: "silent" }),
    clock: options.clock,
  });
  const { grpcPort, httpPort, metricsPort } = await app.start();
  const caller: TestServer["caller"] = (scopes, callerOptions = {}) =>
    app.createCaller(
      { name: `test caller ${scopes.join(" ")}`, scopes: [...scopes], subscriber: callerOptions.subscriber ?? "", groupIds: callerOptions.groupIds ?? [] },
      TEST_TOKEN_SECONDS,
    );
  const { token } = await caller(SYSTEM_SCOPES);
  const transports: Record<"grpc" | "connect", (token: string) => Transport> = {
    grpc: (t) => createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}`, interceptors: [bearer(t)] }),
    connect: (t) => createConnectTransport({ baseUrl: `http://127.0.0.1:${httpPort}`, httpVersion: "1.1", interceptors: [bearer(t)] }),
  };
  const client: TestServer["client"] = (service, clientOptions = {}) =>
    createClient(service, transports[clientOptions.protocol ?? "grpc"](clientOptions.token ?? token));
  return {
    app,
    grpcPort,
    httpPort,
    metricsPort,
    dataDir,
    token,
    grpc: client(KeyManagerService),
    connect: client(KeyManagerService, { protocol: "connect" }),
    client,
    caller,
    async close() {
      await app.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
