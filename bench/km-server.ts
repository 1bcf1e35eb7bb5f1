// The key manager as the benchmark runs it: its own process, SQLite or PostgreSQL from
// KM_DATABASE_URL, plus a no-op unary RPC on the same grpc-js server as the baseline.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { ValidateTokenRequestSchema, ValidateTokenResponseSchema } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { App } from "../src/app.js";

// A canned answer the size of a real "authorized" one, so both RPCs move the same bytes and the
// difference between them is the work of the check itself.
const CANNED = Buffer.from(
  toBinary(
    ValidateTokenResponseSchema,
    create(ValidateTokenResponseSchema, {
      authorized: true,
      statusName: "OK",
      consumerKey: "x".repeat(27),
      applicationId: "00000000-0000-0000-0000-000000000000",
      applicationName: "bench",
      applicationTier: "Unlimited",
      subscriber: "",
      subscriptionTier: "Gold",
      keyType: 1,
      scopes: ["items:read"],
      issuedTimeMs: BigInt(Date.now()),
      validityPeriodMs: 3_600_000n,
      apiName: "Bench",
      apiPublisher: "bench",
      keyManager: "Resident Key Manager",
      tokenType: 1,
      isApplicationToken: true,
      resourceTier: "Unlimited",
    }),
  ),
);

function addNoop(server: grpc.Server): void {
  server.addService(
    {
      noop: {
        path: "/bench.NoopService/Noop",
        requestStream: false,
        responseStream: false,
        // Same codec work as ValidateToken's request; the response is encoded once, up front.
        requestDeserialize: (b: Buffer) => fromBinary(ValidateTokenRequestSchema, b),
        requestSerialize: (m: unknown) => Buffer.from(toBinary(ValidateTokenRequestSchema, m as never)),
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    { noop: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, CANNED) },
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

// KM_BENCH_PROFILE=DIR: SIGUSR2 starts a CPU profile, the next SIGUSR2 writes it to DIR.
if (process.env.KM_BENCH_PROFILE) {
  const { Session } = await import("node:inspector/promises");
  const { writeFileSync } = await import("node:fs");
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  let running = false;
  let n = 0;
  process.on("SIGUSR2", async () => {
    if (!running) {
      running = true;
      await session.post("Profiler.start");
      return;
    }
    running = false;
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(`${process.env.KM_BENCH_PROFILE}/phase-${++n}.cpuprofile`, JSON.stringify(profile));
  });
}
