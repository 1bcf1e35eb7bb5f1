// The key manager as the benchmark runs it: its own process, SQLite or PostgreSQL from
// KM_DATABASE_URL, plus the baselines: a no-op unary RPC through this service's pipeline on the
// key manager's grpc-js server, and the bare grpc-js no-op and bidi stream on a plain grpc-js
// server of their own in the same process (no interceptors: the key manager's server has the
// write-ahead one, which would make the bare stream this service's).
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import {
  TokenValidationService,
  ValidateTokenRequestSchema,
  ValidateTokenResponseSchema,
  ValidateTokensRequestSchema,
  ValidateTokensResponseSchema,
} from "../gen/keymanager/v1/token_validation_service_pb.js";
import { App } from "../src/app.js";
import { SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { type GrpcHandlerOptions, grpcHandlers, grpcServiceDefinition } from "../src/transport/grpc-service.js";

// A canned answer the size of a real "authorized" one, so both RPCs move the same bytes and the
// difference between them is the work of the check itself.
const CANNED_MESSAGE = create(ValidateTokenResponseSchema, {
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
});
const CANNED = Buffer.from(toBinary(ValidateTokenResponseSchema, CANNED_MESSAGE));

/**
 * bench.NoopService/Noop goes through this service's own handler pipeline, as every RPC of it
 * does: the caller's bearer token checked (gateway scope), the request decoded, a handler
 * context, the (cached) encoded answer. ValidateToken differs from it only by the check.
 */
function addPipelineNoop(server: grpc.Server, options: GrpcHandlerOptions): void {
  const definition = grpcServiceDefinition(TokenValidationService);
  const handlers = grpcHandlers(TokenValidationService, { validateToken: () => CANNED_MESSAGE }, options);
  server.addService(
    { noop: { ...(definition.validateToken as grpc.MethodDefinition<unknown, unknown>), path: "/bench.NoopService/Noop" } },
    { noop: handlers.validateToken as grpc.handleUnaryCall<unknown, unknown> },
  );
}

/**
 * Bare grpc-js: a plain grpc.Server with grpc-js's defaults but channelz off (as the key
 * manager's), no interceptors; bench.RawNoopService/Noop decodes the request and answers the
 * pre-encoded bytes, bench.RawStreamService/Noop does so per message of a bidi stream.
 */
async function startBareServer(): Promise<number> {
  const server = new grpc.Server({ "grpc.enable_channelz": 0 });
  addRawNoop(server);
  addRawStream(server);
  return await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
}

function addRawNoop(server: grpc.Server): void {
  server.addService(
    {
      noop: {
        path: "/bench.RawNoopService/Noop",
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

/**
 * The bare grpc-js bidi stream: each request decoded (as ValidateTokens decodes it), answered at
 * once with the canned answer under the request's id (the id's varint before the pre-encoded
 * rest, so no encoding per message), written as grpc-js takes it, ended when the caller ends.
 * What one grpc-js stream does on this machine without any work of this service.
 */
function addRawStream(server: grpc.Server): void {
  const rest = Buffer.from(
    toBinary(ValidateTokensResponseSchema, create(ValidateTokensResponseSchema, { result: { case: "response", value: CANNED_MESSAGE } })),
  );
  const idField = (id: bigint) => Buffer.from(toBinary(ValidateTokensResponseSchema, create(ValidateTokensResponseSchema, { requestId: id })));
  server.addService(
    {
      noop: {
        path: "/bench.RawStreamService/Noop",
        requestStream: true,
        responseStream: true,
        requestDeserialize: (b: Buffer) => fromBinary(ValidateTokensRequestSchema, b),
        requestSerialize: (m: unknown) => Buffer.from(toBinary(ValidateTokensRequestSchema, m as never)),
        responseSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      noop: (call: grpc.ServerDuplexStream<{ requestId: bigint }, Buffer>) => {
        call.on("data", (m: { requestId: bigint }) => call.write(Buffer.concat([idField(m.requestId), rest])));
        call.on("end", () => call.end());
      },
    },
  );
}

const app = new App({
  config: {
    file: undefined,
    env: process.env,
    overrides: {
      // KM_BENCH_STREAM_WRITE_AHEAD=0: the ValidateTokens stream's answers written one at a time (grpc.stream_write_ahead).
      grpc: {
        host: "127.0.0.1",
        port: 0,
        ...(process.env.KM_BENCH_STREAM_WRITE_AHEAD ? { stream_write_ahead: Number(process.env.KM_BENCH_STREAM_WRITE_AHEAD) } : {}),
      },
      http: { host: "127.0.0.1", port: 0 },
      log_level: "silent",
    },
  },
  logger: pino({ level: "silent" }),
  configureGrpc: addPipelineNoop,
});
const ports = await app.start();
const bareGrpcPort = await startBareServer();
// Callers for the run: an admin (seeding) and a gateway, tokens issued as any caller gets them.
const callerToken = async (scopes: string[]) => (await app.createCaller({ name: `bench ${scopes.join(" ")}`, scopes, subscriber: "", groupIds: [] })).token;
const adminToken = await callerToken([...SYSTEM_SCOPES]);
const gatewayToken = await callerToken(["km:gateway"]);
process.stdout.write(`${JSON.stringify({ ...ports, bareGrpcPort, adminToken, gatewayToken })}\n`);
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
