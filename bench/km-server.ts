// The key manager as the benchmark runs it: its own process, SQLite or PostgreSQL from
// KM_DATABASE_URL, plus a no-op unary RPC on the same grpc-js server as the baseline.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { ValidateTokenRequestSchema, ValidateTokenResponseSchema } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { App } from "../src/app.js";

const EMPTY = Buffer.from(toBinary(ValidateTokenResponseSchema, create(ValidateTokenResponseSchema)));

function addNoop(server: grpc.Server): void {
  server.addService(
    {
      noop: {
        path: "/bench.NoopService/Noop",
        requestStream: false,
        responseStream: false,
        // Same codec work as ValidateToken's request; the response is pre-encoded.
        requestDeserialize: (b: Buffer) => fromBinary(ValidateTokenRequestSchema, b),
        requestSerialize: (m: unknown) => Buffer.from(toBinary(ValidateTokenRequestSchema, m as never)),
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    { noop: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, EMPTY) },
  );
}

const app = new App({
  config: { file: undefined, env: process.env, overrides: { grpc: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: 0 }, log_level: "silent" } },
  logger: pino({ level: "silent" }),
  configureGrpc: addNoop,
});
const ports = await app.start();
process.stdout.write(`${JSON.stringify(ports)}\n`);
process.on("SIGTERM", () => void app.close().then(() => process.exit(0)));
