// node --conditions=keymanager-source --import tsx bench/handler-cost.ts [--calls N] [--external-key-managers N]
// The CPU cost of one call inside the service, without the network: the request bytes decoded,
// the grpc-js handler run (authentication, scope, context, the check), the answer encoded.
// Compares ValidateToken with the pipeline no-op and the bare no-op the benchmark uses, in one
// process, so the figures show what this service's own code costs per call.
// --external-key-managers N: the deployment file configures N external key managers (JWKS
// validation, each with its own token pattern that this service's tokens do not match), so the
// ValidateToken rows show what routing an own token past them costs (run with 0, 1 and 8).
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService, ValidateTokenRequestSchema, ValidateTokenResponseSchema } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType } from "../gen/keymanager/v1/types_pb.js";
import { App } from "../src/app.js";
import { SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { grpcHandlers, grpcServiceDefinition } from "../src/transport/grpc-service.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "200000" }, "external-key-managers": { type: "string", default: "0" } } });
const CALLS = Number(values.calls);
const EXTERNAL = Number(values["external-key-managers"]);
const configDir = mkdtempSync(join(tmpdir(), "km-handler-cost-"));
const configFile = join(configDir, "keymanager.toml");
writeFileSync(
  configFile,
  Array.from(
    { length: EXTERNAL },
    (_, i) =>
      `[[key_manager.external]]\nname = "idp-${i}"\nissuer = "https://idp-${i}.example.com"\njwt_validation = "jwks"\n` +
      `token_pattern = "ext${i}-[A-Za-z0-9]{40}"\n[key_manager.external.endpoints]\njwks = "https://idp-${i}.example.com/jwks"\n`,
  ).join("\n"),
);

interface Registered {
  func: (call: unknown, callback: (err: unknown, value?: unknown) => void) => void;
  serialize: (value: unknown) => Buffer;
  deserialize: (bytes: Buffer) => unknown;
}

let server: grpc.Server | undefined;
const CANNED = create(ValidateTokenResponseSchema, { authorized: true, statusCode: 0, statusName: "OK", consumerKey: "k".repeat(28), scopes: ["items:read"] });
const app = new App({
  config: {
    file: configFile,
    env: {},
    overrides: { grpc: { host: "127.0.0.1", port: 0 }, http: { host: "127.0.0.1", port: 0 }, log_level: "error", database: { url: "sqlite::memory:" } },
  },
  logger: pino({ level: "error" }),
  configureGrpc: (s, options) => {
    server = s;
    const definition = grpcServiceDefinition(TokenValidationService);
    const handlers = grpcHandlers(TokenValidationService, { validateToken: () => CANNED }, options);
    s.addService(
      { noop: { ...(definition.validateToken as grpc.MethodDefinition<unknown, unknown>), path: "/bench.NoopService/Noop" } },
      { noop: handlers.validateToken as grpc.handleUnaryCall<unknown, unknown> },
    );
    s.addService(
      {
        noop: {
          ...(definition.validateToken as grpc.MethodDefinition<unknown, unknown>),
          path: "/bench.RawNoopService/Noop",
          // Bare grpc-js decodes in its deserializer (the service's own methods decode in the handler).
          requestDeserialize: (b: Buffer) => fromBinary(ValidateTokenRequestSchema, b),
          responseSerialize: (b: unknown) => b as Buffer,
        },
      },
      { noop: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => callback(null, Buffer.from(toBinary(ValidateTokenResponseSchema, CANNED))) },
    );
  },
});
const { grpcPort } = await app.start();
const configured = (app as unknown as { keyManagers: { registry: { external: readonly unknown[] } } }).keyManagers.registry.external.length;
if (configured !== EXTERNAL) throw new Error(`${configured} external key managers configured, not ${EXTERNAL}`);
const caller = async (scopes: string[]) => (await app.createCaller({ name: `cost ${scopes.join(" ")}`, scopes, subscriber: "", groupIds: [] })).token;
const adminToken = await caller([...SYSTEM_SCOPES]);
const gatewayToken = await caller(["km:gateway"]);
const transport = createGrpcTransport({
  baseUrl: `http://127.0.0.1:${grpcPort}`,
  interceptors: [
    (next) => (req) => {
      req.header.set("authorization", `Bearer ${adminToken}`);
      return next(req);
    },
  ],
});
const km = createClient(KeyManagerService, transport);
const subs = createClient(SubscriptionService, transport);
await subs.createApi({ api: { apiId: "cost-api", name: "Cost", context: "/cost", version: "1.0.0", publisher: "bench" } });
await km.registerNewResource({
  resource: {
    apiId: "cost-api",
    resources: [{ uriTemplate: "/items/{id}", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: ["items:read"], throttlingTier: "Unlimited" }],
  },
});
const applicationId = randomUUID();
const application = (
  await km.createApplication({
    application: { applicationId, keyType: KeyType.PRODUCTION, clientName: "cost", grantTypes: ["client_credentials"], scopes: ["items:read"] },
  })
).application!;
await subs.createSubscription({ subscription: { applicationId, apiId: "cost-api", tier: "Gold" } });
const issue = async (validityPeriodSeconds = 0n) =>
  (
    await km.getNewApplicationAccessToken({
      request: {
        clientId: application.consumerKey,
        clientSecret: application.consumerSecret,
        grantType: "client_credentials",
        scopes: ["items:read"],
        validityPeriodSeconds,
      },
    })
  ).token!.accessToken;
const tokens = { valid: await issue(), expired: await issue(1n), unknown: "u".repeat(43) };
await new Promise((r) => setTimeout(r, 1100));

const handlers = (server as unknown as { handlers: Map<string, Registered> }).handlers;
const requestOf = (accessToken: string) =>
  Buffer.from(
    toBinary(
      ValidateTokenRequestSchema,
      create(ValidateTokenRequestSchema, { context: "/cost", version: "1.0.0", accessToken, matchingResource: "/items/{id}", httpVerb: "GET" }),
    ),
  );
const metadata = new grpc.Metadata();
metadata.set("authorization", `Bearer ${gatewayToken}`);

// The decision cache, switched off for the phase that measures an answer being worked out (every
// fact from the in-process caches, then the decision rules), as on each first call with a token.
const decisions = (app as unknown as { decisions: { get: (...args: unknown[]) => unknown } }).decisions;
const cachedGet = decisions.get;

/**
 * µs per call of decode + handler + encode, the handler answering synchronously or not: elapsed,
 * and the process's CPU time (steadier on a shared machine, where elapsed time includes waiting
 * for a core).
 */
async function cost(path: string, request: Buffer, workedOut = false): Promise<{ wall: number; cpu: number }> {
  decisions.get = workedOut ? () => undefined : cachedGet;
  const h = handlers.get(path);
  if (!h) throw new Error(`no handler ${path}`);
  let answered = 0;
  let failed: unknown;
  const callback = (err: unknown, value?: unknown) => {
    if (err) failed = err;
    else h.serialize(value);
    answered++;
  };
  const run = async (n: number) => {
    answered = 0;
    for (let i = 0; i < n; i++) {
      const call = { request: h.deserialize(request), metadata, cancelled: false, once() {}, getDeadline: () => Infinity, getAuthContext: () => ({}) };
      h.func(call, callback);
    }
    while (answered < n) await new Promise((r) => setImmediate(r));
    if (failed) throw failed;
  };
  await run(Math.min(20_000, CALLS));
  const start = performance.now();
  const cpu = process.cpuUsage();
  await run(CALLS);
  const used = process.cpuUsage(cpu);
  return { wall: ((performance.now() - start) * 1000) / CALLS, cpu: (used.user + used.system) / CALLS };
}

const rows: Array<[string, { wall: number; cpu: number }]> = [];
for (let round = 0; round < 3; round++) {
  const validate = "/keymanager.v1.TokenValidationService/ValidateToken";
  for (const [name, path, token, workedOut] of [
    ["bare grpc-js no-op", "/bench.RawNoopService/Noop", tokens.valid],
    ["pipeline no-op", "/bench.NoopService/Noop", tokens.valid],
    ["ValidateToken, valid token", validate, tokens.valid],
    ["ValidateToken, expired token", validate, tokens.expired],
    ["ValidateToken, unknown token", validate, tokens.unknown],
    ["ValidateToken, worked out", validate, tokens.valid, true],
  ] as const) {
    rows.push([name, await cost(path, requestOf(token), workedOut)]);
  }
}
const median = (values: number[]) => values.sort((a, b) => a - b)[1]!;
for (const name of new Set(rows.map(([n]) => n))) {
  const all = rows.filter(([n]) => n === name).map(([, v]) => v);
  const wall = median(all.map((v) => v.wall));
  const cpu = median(all.map((v) => v.cpu));
  console.log(`${name.padEnd(32)} ${wall.toFixed(2)} µs/call, ${cpu.toFixed(2)} µs CPU/call (medians of 3 rounds)`);
}
console.log(`(${EXTERNAL} external key managers configured)`);
await app.close();
rmSync(configDir, { recursive: true, force: true });
