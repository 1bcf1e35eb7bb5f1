import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { KeyManagerService } from "../../gen/keymanager/v1/key_manager_service_pb.js";
import { App } from "../../src/app.js";
import type { Clock } from "../../src/domain/clock.js";

export interface TestServer {
  app: App;
  grpcPort: number;
  httpPort: number;
  dataDir: string;
  /** Generated client over the gRPC protocol to the grpc-js port. */
  grpc: Client<typeof KeyManagerService>;
  /** Generated client over the Connect protocol (JSON) to the HTTP port. */
  connect: Client<typeof KeyManagerService>;
  close(): Promise<void>;
}

export interface StartOptions {
  /** Reuse a data directory (restart tests); a fresh temporary one otherwise. */
  dataDir?: string;
  configFile?: string;
  databaseUrl?: string;
  clock?: Clock;
  overrides?: Record<string, unknown>;
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
      },
    },
    logger: pino({ level: "silent" }),
    clock: options.clock,
  });
  const { grpcPort, httpPort } = await app.start();
  const grpc = createClient(KeyManagerService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}` }));
  const connect = createClient(
    KeyManagerService,
    createConnectTransport({ baseUrl: `http://127.0.0.1:${httpPort}`, httpVersion: "1.1" }),
  );
  return {
    app,
    grpcPort,
    httpPort,
    dataDir,
    grpc,
    connect,
    async close() {
      await app.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
