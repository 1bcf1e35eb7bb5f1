import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import {
  TokenValidationService,
  type ValidateTokenRequestSchema,
  type ValidateTokenResponse,
  type ValidateTokensRequest,
  ValidateTokensRequestSchema,
  type ValidateTokensResponse,
  ValidateTokensResponseSchema,
} from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType, SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { pipelined } from "../src/services/pipelined.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { createRequest } from "./support/fixtures.js";
import { bearer, startServer, type TestServer } from "./support/server.js";

type CheckInit = MessageInitShape<typeof ValidateTokenRequestSchema>;

const API = { apiId: "streamed", name: "StreamedAPI", context: "/streamed", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [
  { uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/order/{id}", httpVerb: "DELETE", authLevel: AuthLevel.APPLICATION, scopes: ["order:admin"], throttlingTier: "Silver" },
  { uriTemplate: "/health", httpVerb: "GET", authLevel: AuthLevel.NONE, scopes: [], throttlingTier: "Unlimited" },
];
const MAX_IN_FLIGHT = 8;

let server: TestServer;
/** Checks covering most answers: authorized, unknown token, no subscription, blocked, missing scope, by path, no API. */
let checks: CheckInit[];

before(async () => {
  server = await startServer({ overrides: { validation: { stream_max_in_flight: MAX_IN_FLIGHT } } });
  checks = await seed(server);
});
after(() => server?.close());

/** The API, three applications (subscribed, blocked, not subscribed), their tokens, and checks of each. */
async function seed(target: TestServer): Promise<CheckInit[]> {
  const subs = target.client(SubscriptionService);
  await subs.createApi({ api: API });
  await target.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
  const tokens: string[] = [];
  for (const [i, state] of [SubscriptionState.UNBLOCKED, SubscriptionState.BLOCKED, undefined].entries()) {
    const applicationId = randomUUID();
    const app = (await target.grpc.createApplication(createRequest({ applicationId, keyType: KeyType.PRODUCTION, scopes: ["order:admin"] }))).application;
    assert.ok(app);
    if (state !== undefined) await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold", state } });
    // The subscribed application's tokens with and without the scope; the others' with it.
    for (const scopes of i === 0 ? [["order:admin"], []] : [["order:admin"]]) {
      const request = { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", scopes };
      const token = (await target.grpc.getNewApplicationAccessToken({ request })).token?.accessToken;
      assert.ok(token);
      tokens.push(token);
    }
  }
  const base = { context: API.context, version: API.version, httpVerb: "GET" };
  const checks: CheckInit[] = [];
  for (const accessToken of [...tokens, "no-such-token", ""]) {
    checks.push(
      { ...base, accessToken, matchingResource: "/menu" },
      { ...base, accessToken, matchingResource: "/order/{id}", httpVerb: "DELETE" },
      { ...base, accessToken, requestPath: "/streamed/1.0.0/order/7?x=1", httpVerb: "DELETE" },
      { ...base, accessToken, requestPath: "/streamed/1.0.0/health" },
      { ...base, accessToken, matchingResource: "/menu", version: "9.9.9" },
    );
  }
  return checks;
}

/** `count` requests cycling through the checks, with ids 1000, 1001, ... */
function requests(count: number, of = checks): ValidateTokensRequest[] {
  return Array.from({ length: count }, (_, i) => create(ValidateTokensRequestSchema, { requestId: BigInt(1000 + i), request: of[i % of.length] }));
}

async function* each<T>(items: readonly T[]): AsyncIterable<T> {
  for (const item of items) yield item;
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** Unary ValidateToken's answer to each check, the reference the stream must equal. */
async function unaryAnswers(on = server, of = checks): Promise<ValidateTokenResponse[]> {
  const gateway = on.client(TokenValidationService);
  return Promise.all(of.map((c) => gateway.validateToken(c)));
}

/** Each answer is the unary answer of its request's check, every id answered once. */
function assertAnswers(sent: readonly ValidateTokensRequest[], answers: readonly ValidateTokensResponse[], reference: readonly ValidateTokenResponse[]) {
  assert.equal(answers.length, sent.length);
  const byId = new Map(answers.map((a) => [a.requestId, a]));
  assert.equal(byId.size, sent.length, "each request answered once");
  for (const [i, req] of sent.entries()) {
    const answer = byId.get(req.requestId);
    assert.ok(answer, `request ${req.requestId} answered`);
    assert.equal(answer.result.case, "response", `request ${req.requestId}: ${answer.result.case === "error" ? answer.result.value.message : ""}`);
    const expected = reference[i % reference.length];
    assert.ok(expected);
    assert.deepEqual(answer.result.value, expected, `request ${req.requestId}`);
  }
}

function h2Client(protocol: "connect" | "grpc", token = server.token): Client<typeof TokenValidationService> {
  const baseUrl = `http://127.0.0.1:${server.httpPort}`;
  const transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl, httpVersion: "2", interceptors: [bearer(token)] })
      : createGrpcTransport({ baseUrl, interceptors: [bearer(token)] });
  return createClient(TokenValidationService, transport);
}

describe("ValidateTokens: many checks over one stream", () => {
  test("the statuses of the checks cover authorized and refused answers", async () => {
    const codes = new Set((await unaryAnswers()).map((a) => a.statusCode));
    for (const code of [0, 900901, 900908, 900907, 900910]) assert.ok(codes.has(code), `status ${code} among ${[...codes]}`);
  });

  const transports: [string, () => Client<typeof TokenValidationService>][] = [
    ["gRPC port, generated client", () => server.client(TokenValidationService)],
    ["HTTP port over HTTP/2, Connect protocol", () => h2Client("connect")],
    ["HTTP port over HTTP/2, gRPC protocol", () => h2Client("grpc")],
  ];
  for (const [name, client] of transports) {
    test(`${name}: 2,000 requests, each answer equal to unary ValidateToken's`, async () => {
      const reference = await unaryAnswers();
      const sent = requests(2000);
      assertAnswers(sent, await collect(client().validateTokens(each(sent))), reference);
    });
  }

  test("HTTP/1.1 still serves unary calls, REST and health on the same port", async () => {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
    assert.equal(res.status, 200);
    const answer = await server.client(TokenValidationService, { protocol: "connect" }).validateToken(checks[0] ?? {});
    assert.equal(answer.statusCode, 0);
  });

  test("an empty stream ends at once, OK", async () => {
    assert.deepEqual(await collect(server.client(TokenValidationService).validateTokens(each([]))), []);
  });
});

describe("ValidateTokens: bad input is answered per request", () => {
  for (const protocol of ["grpc", "connect"] as const) {
    test(`${protocol}: a request missing fields, or its check, gets an error answer; the stream goes on`, async () => {
      const client = protocol === "grpc" ? server.client(TokenValidationService) : h2Client("connect");
      const sent = [
        create(ValidateTokensRequestSchema, { requestId: 1n, request: { accessToken: "x" } }),
        create(ValidateTokensRequestSchema, { requestId: 2n }),
        create(ValidateTokensRequestSchema, { requestId: 3n, request: { ...checks[0], requiredAuthLevel: 99 as AuthLevel } }),
        create(ValidateTokensRequestSchema, { requestId: 4n, request: checks[0] }),
      ];
      const answers = new Map((await collect(client.validateTokens(each(sent)))).map((a) => [a.requestId, a.result]));
      const first = answers.get(1n);
      assert.equal(first?.case, "error");
      assert.equal(first.value.code, Code.InvalidArgument);
      assert.match(first.value.message, /context: is required/);
      assert.match(first.value.message, /http_verb: is required/);
      const second = answers.get(2n);
      assert.equal(second?.case, "error");
      assert.equal(second.value.code, Code.InvalidArgument);
      const third = answers.get(3n);
      assert.equal(third?.case, "error");
      assert.match(third.value.message, /required_auth_level/);
      const fourth = answers.get(4n);
      assert.equal(fourth?.case, "response");
      assert.equal(fourth.value.statusCode, 0);
    });
  }

  test("plain grpc-js: a message that does not decode ends the stream INVALID_ARGUMENT, after the answers before it", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const call = rawStream(client, server.token);
      const answers: ValidateTokensResponse[] = [];
      call.on("data", (bytes: Buffer) => answers.push(fromBinary(ValidateTokensResponseSchema, bytes)));
      call.write(Buffer.from(toBinary(ValidateTokensRequestSchema, create(ValidateTokensRequestSchema, { requestId: 7n, request: checks[0] }))));
      call.write(Buffer.from([0x0a, 0xff]));
      const status = await ended(call);
      assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
      assert.match(status.details, /cannot decode message keymanager\.v1\.ValidateTokensRequest/);
      assert.deepEqual(
        answers.map((a) => a.requestId),
        [7n],
      );
    } finally {
      client.close();
    }
  });
});

describe("ValidateTokens: only gateways", () => {
  for (const protocol of ["grpc", "connect"] as const) {
    const client = (token: string) => (protocol === "grpc" ? server.client(TokenValidationService, { token }) : h2Client("connect", token));
    test(`${protocol}: no token is UNAUTHENTICATED, a store token PERMISSION_DENIED, before any answer`, async () => {
      await rejectsWith(collect(client("").validateTokens(each(requests(3)))), Code.Unauthenticated);
      await rejectsWith(collect(client("not-a-token").validateTokens(each(requests(3)))), Code.Unauthenticated);
      const store = await server.caller([SCOPES.store], { subscriber: "admin" });
      await rejectsWith(collect(client(store.token).validateTokens(each(requests(3)))), Code.PermissionDenied, /km:gateway/);
      const gateway = await server.caller([SCOPES.gateway]);
      assert.equal((await collect(client(gateway.token).validateTokens(each(requests(3))))).length, 3);
    });
  }
});

describe("ValidateTokens: flow control", () => {
  test("a caller that does not read is held back, not buffered for; once it reads, every answer comes", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const call = rawStream(client, server.token);
      call.pause();
      const sent = requests(30_000);
      let written = 0;
      let blocked = false;
      const encoded = sent.map((r) => Buffer.from(toBinary(ValidateTokensRequestSchema, r)));
      for (const bytes of encoded) {
        written++;
        if (!call.write(bytes)) {
          // Let the transport move what it can, then see whether the server still takes more.
          const drained = await Promise.race([new Promise((r) => call.once("drain", () => r(true))), new Promise((r) => setTimeout(() => r(false), 500))]);
          if (!drained) {
            blocked = true;
            break;
          }
        }
      }
      assert.ok(blocked, `the server took all ${written} requests while no answer was read`);
      assert.ok(written < sent.length);
      const answers: ValidateTokensResponse[] = [];
      call.on("data", (bytes: Buffer) => answers.push(fromBinary(ValidateTokensResponseSchema, bytes)));
      call.resume();
      for (const bytes of encoded.slice(written)) {
        if (!call.write(bytes)) await new Promise((r) => call.once("drain", r));
      }
      call.end();
      const status = await ended(call);
      assert.equal(status.code, grpc.status.OK, status.details);
      assertAnswers(sent, answers, await unaryAnswers());
    } finally {
      client.close();
    }
  });

  test("at most max in flight requests are worked on, and no more are read meanwhile", async () => {
    const pending: ((n: number) => void)[] = [];
    let read = 0;
    async function* source() {
      for (let i = 0; i < 20; i++) {
        read++;
        yield i;
      }
    }
    const out = pipelined(source(), (i) => new Promise<number>((resolve) => pending.push(() => resolve(i))), 4);
    const first = out.next();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pending.length, 4);
    assert.ok(read <= 5, `read ${read}`);
    pending[2]?.(0);
    assert.equal((await first).value, 2);
    const second = out.next();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(pending.length, 5, "one more read once an answer was taken");
    pending[4]?.(0);
    assert.equal((await second).value, 4);
    for (const resolve of [...pending]) resolve(0);
    const rest: number[] = [];
    for (let next = await out.next(); !next.done; next = await out.next()) {
      rest.push(next.value);
      for (const resolve of pending.splice(0)) resolve(0);
    }
    assert.deepEqual(
      [2, 4, ...rest].sort((a, b) => a - b),
      Array.from({ length: 20 }, (_, i) => i),
    );
  });
});

function rawStream(client: grpc.Client, token: string) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return client.makeBidiStreamRequest(
    `/${TokenValidationService.typeName}/ValidateTokens`,
    (b: Buffer) => b,
    (b: Buffer) => b,
    metadata,
  );
}

function ended(call: grpc.ClientDuplexStream<Buffer, Buffer>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on("error", () => {});
    call.on("status", resolve);
  });
}

describe("ValidateTokens: grpc.stream_write_ahead", () => {
  test("by default the gRPC port's ValidateTokens answers are written ahead (corked in bursts)", async () => {
    const corked = server.app.grpcWriteAhead?.corked ?? 0;
    const sent = requests(500);
    assertAnswers(sent, await collect(server.client(TokenValidationService).validateTokens(each(sent))), await unaryAnswers());
    assert.equal(server.app.grpcWriteAhead?.corked, corked + 1);
    assert.equal(server.app.grpcWriteAhead?.plain, 0);
  });

  test("0: answers written one at a time, each equal to unary ValidateToken's, none corked", async () => {
    const plain = await startServer({ overrides: { grpc: { stream_write_ahead: 0 } } });
    try {
      const own = await seed(plain);
      const reference = await unaryAnswers(plain, own);
      const sent = requests(5000, own);
      assertAnswers(sent, await collect(plain.client(TokenValidationService).validateTokens(each(sent))), reference);
      assert.deepEqual(plain.app.grpcWriteAhead, { corked: 0, plain: 0 });
    } finally {
      await plain.close();
    }
  });
});
