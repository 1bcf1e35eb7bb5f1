import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { HealthCheckRequestSchema, HealthCheckResponse_ServingStatus, HealthCheckResponseSchema } from "../gen/grpc/health/v1/health_pb.js";
import {
  CreateApplicationRequestSchema,
  CreateApplicationResponseSchema,
  KeyManagerService,
  RetrieveApplicationRequestSchema,
  RetrieveApplicationResponseSchema,
} from "../gen/keymanager/v1/key_manager_service_pb.js";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

let server: TestServer;
let client: grpc.Client;
before(async () => {
  server = await startServer();
  client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
});
after(async () => {
  client.close();
  await server.close();
});

/** A unary call with nothing but @grpc/grpc-js and the generated schemas' binary codecs. */
function unary<Req, Res>(path: string, request: Req, encode: (r: Req) => Uint8Array, decode: (b: Buffer) => Res, metadata = authorized()) {
  return new Promise<Res>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (r: Req) => Buffer.from(encode(r)),
      decode,
      request,
      metadata,
      (err, res) => (err ? reject(err) : resolve(res as Res)),
    );
  });
}

function authorized(token = server.token): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

const method = (name: string) => `/${KeyManagerService.typeName}/${name}`;

test("plain grpc-js client creates and retrieves an application", async () => {
  const req = create(CreateApplicationRequestSchema, createRequest());
  const created = await unary(
    method("CreateApplication"),
    req,
    (r) => toBinary(CreateApplicationRequestSchema, r),
    (b) => fromBinary(CreateApplicationResponseSchema, b),
  );
  assert.equal(created.application?.applicationId, req.application?.applicationId);
  const retrieved = await unary(
    method("RetrieveApplication"),
    create(RetrieveApplicationRequestSchema, {
      selector: { case: "applicationKey", value: { applicationId: req.application?.applicationId ?? "", keyType: KeyType.PRODUCTION } },
    }),
    (r) => toBinary(RetrieveApplicationRequestSchema, r),
    (b) => fromBinary(RetrieveApplicationResponseSchema, b),
  );
  assert.equal(retrieved.application?.consumerKey, created.application?.consumerKey);
});

test("plain grpc-js client sees INVALID_ARGUMENT naming the fields", async () => {
  const bad = create(CreateApplicationRequestSchema, createRequest({ clientName: "", applicationId: "has space" }));
  await assert.rejects(
    unary(
      method("CreateApplication"),
      bad,
      (r) => toBinary(CreateApplicationRequestSchema, r),
      (b) => b,
    ),
    (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err.details, /application_id/);
      assert.match(err.details, /client_name: is required/);
      return true;
    },
  );
});

test("grpc.health.v1 reports SERVING for the server and the service", async () => {
  for (const service of ["", KeyManagerService.typeName]) {
    const res = await unary(
      "/grpc.health.v1.Health/Check",
      create(HealthCheckRequestSchema, { service }),
      (r) => toBinary(HealthCheckRequestSchema, r),
      (b) => fromBinary(HealthCheckResponseSchema, b),
    );
    assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
  }
  await assert.rejects(
    unary(
      "/grpc.health.v1.Health/Check",
      create(HealthCheckRequestSchema, { service: "no.such.Service" }),
      (r) => toBinary(HealthCheckRequestSchema, r),
      (b) => fromBinary(HealthCheckResponseSchema, b),
    ),
    (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND,
  );
});

test("GET /healthz on the HTTP port", async () => {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "SERVING" });
  const missing = await fetch(`http://127.0.0.1:${server.httpPort}/no-such-path`);
  assert.equal(missing.status, 404);
});
