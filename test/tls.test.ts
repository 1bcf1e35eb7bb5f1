import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as https from "node:https";
import * as tls from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { DescService } from "@bufbuild/protobuf";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";
import { CreateApplicationRequestSchema, CreateApplicationResponseSchema, KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { TokenValidationService, ValidateTokenRequestSchema, ValidateTokenResponseSchema } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { createRequest } from "./support/fixtures.js";
import { bearer, startServer, type TestServer } from "./support/server.js";

// ---------------------------------------------------------------------------------------------
// Certificates, made with the openssl CLI: a server CA and the server's certificate for
// 127.0.0.1/localhost, a gateways' client CA and a gateway's certificate (CN=gateway-1), and an
// unrelated CA with a client certificate of the same name.
// ---------------------------------------------------------------------------------------------

interface Pem {
  cert: Buffer;
  key: Buffer;
}

interface Certificates {
  dir: string;
  serverCa: Buffer;
  server: Pem & { certFile: string; keyFile: string };
  clientCaFile: string;
  gateway: Pem;
  rogue: Pem;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("/usr/bin/openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): void {
  openssl(dir, [
    "req",
    "-x509",
    ...EC_KEY,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, cn: string, extensions: string): Pem {
  writeFileSync(join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${extensions}\n`);
  openssl(dir, ["req", "-new", ...EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
  ]);
  return { cert: readFileSync(join(dir, `${name}.crt`)), key: readFileSync(join(dir, `${name}.key`)) };
}

function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), "km-tls-"));
  makeCa(dir, "server-ca");
  makeCa(dir, "client-ca");
  makeCa(dir, "rogue-ca");
  const server = makeLeaf(dir, "server", "server-ca", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth");
  const gateway = makeLeaf(dir, "gateway", "client-ca", "gateway-1", "extendedKeyUsage=clientAuth");
  const rogue = makeLeaf(dir, "rogue", "rogue-ca", "gateway-1", "extendedKeyUsage=clientAuth");
  return {
    dir,
    serverCa: readFileSync(join(dir, "server-ca.crt")),
    server: { ...server, certFile: join(dir, "server.crt"), keyFile: join(dir, "server.key") },
    clientCaFile: join(dir, "client-ca.crt"),
    gateway,
    rogue,
  };
}

// ---------------------------------------------------------------------------------------------
// Clients over TLS
// ---------------------------------------------------------------------------------------------

const certs = makeCertificates();
after(() => rmSync(certs.dir, { recursive: true, force: true }));

interface ClientOptions {
  token?: string;
  /** A client certificate to present. */
  identity?: Pem;
  /** Fail fast: a refused handshake must not wait for a retry. */
  timeoutMs?: number;
}

/** The generated client over gRPC (HTTP/2 + TLS) to the gRPC port. */
function grpcClient<S extends DescService>(port: number, service: S, options: ClientOptions = {}): Client<S> {
  return createClient(
    service,
    createGrpcTransport({
      baseUrl: `https://127.0.0.1:${port}`,
      nodeOptions: { ca: certs.serverCa, ...(options.identity ?? {}) },
      interceptors: [bearer(options.token ?? "")],
      defaultTimeoutMs: options.timeoutMs ?? 5000,
    }),
  );
}

/** The generated client over the Connect protocol (HTTP/1.1 + TLS) to the HTTP port. */
function connectClient<S extends DescService>(port: number, service: S, options: ClientOptions = {}): Client<S> {
  return createClient(
    service,
    createConnectTransport({
      baseUrl: `https://127.0.0.1:${port}`,
      httpVersion: "1.1",
      // A fresh agent per client: the global agent would reuse a connection made with another certificate.
      nodeOptions: { ca: certs.serverCa, ...(options.identity ?? {}), agent: new https.Agent({ keepAlive: false }) },
      interceptors: [bearer(options.token ?? "")],
      defaultTimeoutMs: options.timeoutMs ?? 5000,
    }),
  );
}

/** A unary call with nothing but @grpc/grpc-js. */
function grpcJsUnary<Req, Res>(
  client: grpc.Client,
  path: string,
  request: Req,
  encode: (r: Req) => Uint8Array,
  decode: (b: Buffer) => Res,
  metadata = new grpc.Metadata(),
): Promise<Res> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (r: Req) => Buffer.from(encode(r)),
      decode,
      request,
      metadata,
      { deadline: Date.now() + 5000 },
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    );
  });
}

function grpcJsHealth(client: grpc.Client): Promise<HealthCheckResponse_ServingStatus> {
  return grpcJsUnary(
    client,
    "/grpc.health.v1.Health/Check",
    create(HealthCheckRequestSchema, { service: "" }),
    (r) => toBinary(HealthCheckRequestSchema, r),
    (b) => fromBinary(HealthCheckResponseSchema, b),
  ).then((r) => r.status);
}

function httpsGet(port: number, path: string, options: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, path, ca: certs.serverCa, agent: false, timeout: 5000, ...options }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
  });
}

/** The call must fail without an answer from the service: the handshake or connection fails. */
async function failsBeforeTheService(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    const ce = ConnectError.from(err);
    assert.ok(
      ![Code.Unauthenticated, Code.PermissionDenied, Code.InvalidArgument, Code.NotFound].includes(ce.code),
      `expected a transport failure, got ${Code[ce.code]} from the service: ${ce.rawMessage}`,
    );
    return ce;
  }
  assert.fail("expected the call to fail at the TLS layer, but it succeeded");
}

/**
 * A bare TLS connection speaking HTTP/2: "open" when the server answers (its SETTINGS frame),
 * else how the connection ended. With TLS 1.3 a refused client certificate shows only after the
 * client's side of the handshake is done.
 */
function handshake(port: number, identity: Pem | undefined): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ca: certs.serverCa, ...(identity ?? {}), ALPNProtocols: ["h2"] });
    socket.on("secureConnect", () => socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    socket.on("error", (err) => resolve(`error: ${err.message}`));
    socket.on("data", () => {
      resolve("open");
      socket.destroy();
    });
    socket.on("close", () => resolve("closed"));
  });
}

const unknownToken = { context: "/pizzashack", version: "1.0.0", accessToken: "not-a-token-this-service-issued", matchingResource: "/menu", httpVerb: "GET" };

/** An API, an application subscribed to it and a token of it, made by the admin over the gRPC port. */
async function subscribedToken(server: TestServer, identity: Pem | undefined): Promise<string> {
  const subs = grpcClient(server.grpcPort, SubscriptionService, { token: server.token, identity });
  const keys = grpcClient(server.grpcPort, KeyManagerService, { token: server.token, identity });
  await subs.createApi({ api: { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" } });
  await keys.registerNewResource({
    resource: {
      apiId: "pizzashack",
      resources: [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
    },
  });
  const req = createRequest();
  const app = (await keys.createApplication(req)).application;
  assert.ok(app);
  await subs.createSubscription({ subscription: { applicationId: req.application.applicationId, apiId: "pizzashack", tier: "Gold" } });
  const issued = await keys.getNewApplicationAccessToken({
    request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
  });
  return issued.token?.accessToken ?? "";
}

// ---------------------------------------------------------------------------------------------
// TLS on both ports
// ---------------------------------------------------------------------------------------------

describe("TLS on both ports", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ overrides: { tls: { cert_file: certs.server.certFile, key_file: certs.server.keyFile } } });
  });
  after(() => server.close());

  test("generated gRPC client over TLS (createGrpcTransport with the CA in nodeOptions)", async () => {
    const client = grpcClient(server.grpcPort, KeyManagerService, { token: server.token });
    const req = createRequest();
    const { application } = await client.createApplication(req);
    assert.equal(application?.applicationId, req.application.applicationId);
    const { application: again } = await client.retrieveApplication({ selector: { case: "consumerKey", value: application?.consumerKey ?? "" } });
    assert.deepEqual(again, application);
  });

  test("the server's certificate is checked: a client without the CA refuses it", async () => {
    const transport = createGrpcTransport({ baseUrl: `https://127.0.0.1:${server.grpcPort}`, interceptors: [bearer(server.token)], defaultTimeoutMs: 5000 });
    const err = await failsBeforeTheService(createClient(KeyManagerService, transport).createApplication(createRequest()));
    assert.match(err.rawMessage + String(err.cause), /certificate|self.signed|verify/i);
  });

  test("plain @grpc/grpc-js client with credentials.createSsl(ca)", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createSsl(certs.serverCa));
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${server.token}`);
      const req = create(CreateApplicationRequestSchema, createRequest());
      const created = await grpcJsUnary(
        client,
        `/${KeyManagerService.typeName}/CreateApplication`,
        req,
        (r) => toBinary(CreateApplicationRequestSchema, r),
        (b) => fromBinary(CreateApplicationResponseSchema, b),
        metadata,
      );
      assert.equal(created.application?.applicationId, req.application?.applicationId);
      assert.equal(await grpcJsHealth(client), HealthCheckResponse_ServingStatus.SERVING, "health over TLS, no token");
    } finally {
      client.close();
    }
  });

  test("Connect over HTTPS on the HTTP port", async () => {
    const client = connectClient(server.httpPort, KeyManagerService, { token: server.token });
    const req = createRequest();
    const { application } = await client.createApplication(req);
    assert.equal(application?.applicationId, req.application.applicationId);
    await rejectsWith(connectClient(server.httpPort, KeyManagerService).createApplication(createRequest()), Code.Unauthenticated, /Bearer/);
  });

  test("plaintext clients fail on both ports", async () => {
    const grpcPlain = createClient(
      KeyManagerService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}`, interceptors: [bearer(server.token)], defaultTimeoutMs: 3000 }),
    );
    await failsBeforeTheService(grpcPlain.createApplication(createRequest()));

    const grpcJsPlain = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      await assert.rejects(grpcJsHealth(grpcJsPlain), (err: grpc.ServiceError) => {
        assert.ok([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL].includes(err.code), `got ${err.code}: ${err.details}`);
        return true;
      });
    } finally {
      grpcJsPlain.close();
    }

    const connectPlain = createClient(
      KeyManagerService,
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${server.httpPort}`,
        httpVersion: "1.1",
        interceptors: [bearer(server.token)],
        defaultTimeoutMs: 3000,
      }),
    );
    await failsBeforeTheService(connectPlain.createApplication(createRequest()));
  });

  test("health over TLS: grpc.health.v1 on the gRPC port, /healthz on the HTTP port", async () => {
    const health = new grpc.Client(`localhost:${server.grpcPort}`, grpc.credentials.createSsl(certs.serverCa));
    try {
      assert.equal(await grpcJsHealth(health), HealthCheckResponse_ServingStatus.SERVING, "the DNS name in the certificate works too");
    } finally {
      health.close();
    }
    const res = await httpsGet(server.httpPort, "/healthz");
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.body), { status: "SERVING" });
  });
});

// ---------------------------------------------------------------------------------------------
// mTLS for gateways
// ---------------------------------------------------------------------------------------------

describe("mTLS: client certificates of the gateways' CA", () => {
  let server: TestServer;
  let token: string;
  before(async () => {
    server = await startServer({
      overrides: { tls: { cert_file: certs.server.certFile, key_file: certs.server.keyFile, client_ca_file: certs.clientCaFile } },
    });
    token = await subscribedToken(server, certs.gateway);
  });
  after(() => server.close());

  test("gRPC: a gateway's certificate calls ValidateToken without a bearer token", async () => {
    const gateway = grpcClient(server.grpcPort, TokenValidationService, { identity: certs.gateway });
    const answer = await gateway.validateToken(unknownToken);
    assert.equal(answer.authorized, false, "an unknown token is an answer, not an error");
    assert.equal(answer.statusName, "API_AUTH_INVALID_CREDENTIALS");
    const valid = await gateway.validateToken({ ...unknownToken, accessToken: token });
    assert.equal(valid.authorized, true, `${valid.statusName}`);
    assert.equal(valid.apiName, "PizzaShackAPI");
  });

  test("plain @grpc/grpc-js with createSsl(ca, key, cert) also authenticates by certificate", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createSsl(certs.serverCa, certs.gateway.key, certs.gateway.cert));
    try {
      assert.equal(await grpcJsHealth(client), HealthCheckResponse_ServingStatus.SERVING);
      const answer = await grpcJsUnary(
        client,
        `/${TokenValidationService.typeName}/ValidateToken`,
        create(ValidateTokenRequestSchema, { ...unknownToken, accessToken: token }),
        (r) => toBinary(ValidateTokenRequestSchema, r),
        (b) => fromBinary(ValidateTokenResponseSchema, b),
      );
      assert.equal(answer.authorized, true, "no metadata at all: the certificate is the credential");
    } finally {
      client.close();
    }
  });

  test("gRPC: the certificate grants only client_certificate_scopes (km:gateway by default)", async () => {
    const subs = grpcClient(server.grpcPort, SubscriptionService, { identity: certs.gateway });
    await rejectsWith(subs.listApis({}), Code.PermissionDenied, new RegExp(SCOPES.admin));
    const keys = grpcClient(server.grpcPort, KeyManagerService, { identity: certs.gateway });
    await rejectsWith(keys.createApplication(createRequest()), Code.PermissionDenied, new RegExp(SCOPES.store));
  });

  test("gRPC: a bearer token alongside the certificate is the caller", async () => {
    const admin = grpcClient(server.grpcPort, SubscriptionService, { identity: certs.gateway, token: server.token });
    await admin.listApis({});
    const store = await server.caller([SCOPES.store], { subscriber: "sam" });
    const asStore = grpcClient(server.grpcPort, TokenValidationService, { identity: certs.gateway, token: store.token });
    await rejectsWith(asStore.validateToken(unknownToken), Code.PermissionDenied, /km:gateway/);
  });

  test("gRPC: no client certificate, no connection", async () => {
    assert.equal(await handshake(server.grpcPort, certs.gateway), "open");
    assert.match(await handshake(server.grpcPort, undefined), /certificate required/);
    const bare = grpcClient(server.grpcPort, TokenValidationService, { token: server.token, timeoutMs: 3000 });
    await failsBeforeTheService(bare.validateToken(unknownToken));
    const grpcJs = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createSsl(certs.serverCa));
    try {
      await assert.rejects(grpcJsHealth(grpcJs), (err: grpc.ServiceError) => {
        assert.notEqual(err.code, grpc.status.OK);
        assert.ok(![grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED].includes(err.code), `got ${err.code}: ${err.details}`);
        return true;
      });
    } finally {
      grpcJs.close();
    }
  });

  test("gRPC: a certificate of an unrelated CA is refused at the handshake", async () => {
    assert.notEqual(await handshake(server.grpcPort, certs.rogue), "open", "the server drops the connection");
    const rogue = grpcClient(server.grpcPort, TokenValidationService, { identity: certs.rogue, timeoutMs: 3000 });
    await failsBeforeTheService(rogue.validateToken(unknownToken));
    const withToken = grpcClient(server.grpcPort, TokenValidationService, { identity: certs.rogue, token: server.token, timeoutMs: 3000 });
    await failsBeforeTheService(withToken.validateToken(unknownToken));
  });

  test("HTTP: the certificate is optional; a store caller's token works without one", async () => {
    const store = await server.caller([SCOPES.store], { subscriber: "alice" });
    const client = connectClient(server.httpPort, KeyManagerService, { token: store.token });
    const req = createRequest({ appOwner: "" });
    const { application } = await client.createApplication(req);
    assert.equal(application?.applicationId, req.application.applicationId);
    assert.equal(application?.appOwner, "alice");
    const res = await httpsGet(server.httpPort, "/healthz");
    assert.equal(res.status, 200, "health needs neither certificate nor token");
  });

  test("HTTP: a verified client certificate authenticates ValidateToken over Connect", async () => {
    const gateway = connectClient(server.httpPort, TokenValidationService, { identity: certs.gateway });
    const answer = await gateway.validateToken(unknownToken);
    assert.equal(answer.authorized, false);
    assert.equal(answer.statusName, "API_AUTH_INVALID_CREDENTIALS");
    assert.equal((await gateway.validateToken({ ...unknownToken, accessToken: token })).authorized, true);
    await rejectsWith(connectClient(server.httpPort, SubscriptionService, { identity: certs.gateway }).listApis({}), Code.PermissionDenied);
  });

  test("ValidateTokens with a gateway's certificate: gRPC port, and the HTTP port over HTTP/2 (ALPN h2)", async () => {
    async function* requests() {
      yield { requestId: 1n, request: unknownToken };
      yield { requestId: 2n, request: { ...unknownToken, accessToken: token } };
    }
    const h2 = createClient(
      TokenValidationService,
      createConnectTransport({
        baseUrl: `https://127.0.0.1:${server.httpPort}`,
        httpVersion: "2",
        nodeOptions: { ca: certs.serverCa, ...certs.gateway },
        defaultTimeoutMs: 5000,
      }),
    );
    for (const gateway of [grpcClient(server.grpcPort, TokenValidationService, { identity: certs.gateway }), h2]) {
      const answers = new Map<bigint, boolean>();
      for await (const a of gateway.validateTokens(requests())) answers.set(a.requestId, a.result.case === "response" && a.result.value.authorized);
      assert.deepEqual([...answers].sort(), [
        [1n, false],
        [2n, true],
      ]);
    }
    const anonymous = createClient(
      TokenValidationService,
      createConnectTransport({ baseUrl: `https://127.0.0.1:${server.httpPort}`, httpVersion: "2", nodeOptions: { ca: certs.serverCa } }),
    );
    await rejectsWith(
      (async () => {
        for await (const _ of anonymous.validateTokens(requests()));
      })(),
      Code.Unauthenticated,
    );
  });

  test("Watch with a gateway's certificate on both ports; without one, UNAUTHENTICATED", async () => {
    const http = createConnectTransport({
      baseUrl: `https://127.0.0.1:${server.httpPort}`,
      httpVersion: "1.1",
      nodeOptions: { ca: certs.serverCa, ...certs.gateway },
    });
    for (const gateway of [grpcClient(server.grpcPort, GatewaySyncService, { identity: certs.gateway }), createClient(GatewaySyncService, http)]) {
      for await (const m of gateway.watch({ apiContexts: ["/pizzashack"] }, { timeoutMs: 10_000 })) {
        assert.equal(m.message.case, "snapshotChunk");
        assert.ok(m.message.value.entities.some((e) => e.entity.case === "api" && e.entity.value.context === "/pizzashack"));
        break;
      }
    }
    const anonymous = createClient(
      GatewaySyncService,
      createConnectTransport({ baseUrl: `https://127.0.0.1:${server.httpPort}`, httpVersion: "1.1", nodeOptions: { ca: certs.serverCa } }),
    );
    await rejectsWith(
      (async () => {
        for await (const _ of anonymous.watch({}, { timeoutMs: 10_000 }));
      })(),
      Code.Unauthenticated,
    );
  });

  test("client_certificate_scopes decides what a certificate may call", async () => {
    const admins = await startServer({
      overrides: {
        tls: {
          cert_file: certs.server.certFile,
          key_file: certs.server.keyFile,
          client_ca_file: certs.clientCaFile,
          client_certificate_scopes: [SCOPES.admin],
        },
      },
    });
    try {
      await grpcClient(admins.grpcPort, SubscriptionService, { identity: certs.gateway }).listApis({});
      await rejectsWith(
        grpcClient(admins.grpcPort, TokenValidationService, { identity: certs.gateway }).validateToken(unknownToken),
        Code.PermissionDenied,
        /km:gateway/,
      );
    } finally {
      await admins.close();
    }
  });

  test("HTTP: an unverified certificate (unrelated CA) is no credential", async () => {
    const rogue = connectClient(server.httpPort, TokenValidationService, { identity: certs.rogue });
    await rejectsWith(rogue.validateToken(unknownToken), Code.Unauthenticated, /Bearer/);
    const anonymous = connectClient(server.httpPort, TokenValidationService);
    await rejectsWith(anonymous.validateToken(unknownToken), Code.Unauthenticated, /Bearer/);
  });
});
