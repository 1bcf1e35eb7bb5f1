/**
 * Error amplification (issue #11, point 5): a small or unauthenticated request must not get a
 * huge answer, cost much CPU, or stall other calls. Error details are capped (the first 20
 * violations and "N more"), every error header or trailer stays under 8 KiB, and callers are
 * authenticated before their request bodies are validated, on every port.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, test } from "node:test";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { RegisterNewResourceRequestSchema } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const HEADER_LIMIT = 8 * 1024;
/** Answers seen, for the diagnostic: the largest error answer provoked. */
const answers: Array<{ what: string; bytes: number }> = [];
const note = (what: string, bytes: number) => answers.push({ what, bytes });

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

interface RawAnswer {
  status: number;
  body: Buffer;
  headerBytes: number;
  headers: http.IncomingHttpHeaders;
  ms: number;
}

/** One HTTP/1.1 request; `partial` sends the headers and this much of the body, never the rest. */
function request(path: string, body: Buffer, headers: Record<string, string>, partial?: number): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port: server.httpPort, path, method: "POST", headers: { ...headers, "content-length": String(body.length) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const headerBytes = res.rawHeaders.reduce((n, h) => n + h.length + 2, 0);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headerBytes, headers: res.headers, ms: performance.now() - started });
          if (partial !== undefined) req.destroy();
        });
      },
    );
    req.on("error", (err) => {
      if (partial === undefined) reject(err);
    });
    if (partial === undefined) req.end(body);
    else req.write(body.subarray(0, partial));
  });
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };
const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}` });

/** 1000 resources, each wrong: 1000 violations in a request of a few KB. */
function badResources(apiId: string) {
  return create(RegisterNewResourceRequestSchema, {
    resource: {
      apiId,
      resources: Array.from({ length: 1000 }, () => ({ uriTemplate: "x", httpVerb: "FETCH", scopes: ["bad scope"], throttlingTier: "" })),
    },
  });
}

describe("POST /oauth2/token with 32k bad scopes in a 64 KiB body", () => {
  // `"` is no scope character (RFC 6749 3.3); written raw, two bytes a scope.
  const tokenForm = (scope: string) => Buffer.from(`grant_type=client_credentials&scope=${scope}`);
  const scopes = '"+'.repeat(32_000);

  test("without credentials: a short answer, nothing validated", async () => {
    const res = await request("/oauth2/token", tokenForm(scopes), FORM);
    note("/oauth2/token, no credentials", res.body.length + res.headerBytes);
    assert.equal(res.status, 400);
    assert.match(res.body.toString(), /client_id: is required/);
    assert.ok(res.body.length < 512, `${res.body.length} bytes`);
  });

  test("with a wrong secret: 401, short", async () => {
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const res = await request("/oauth2/token", tokenForm(scopes), { ...FORM, ...basic(app.consumerKey, "wrong") });
    note("/oauth2/token, wrong secret", res.body.length + res.headerBytes);
    assert.equal(res.status, 401);
    assert.ok(res.body.length < 512, `${res.body.length} bytes`);
  });

  test("authenticated: the bad scopes are described briefly", async () => {
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const many = await request("/oauth2/token", tokenForm(scopes), { ...FORM, ...basic(app.consumerKey, app.consumerSecret) });
    note("/oauth2/token, 32k bad scopes", many.body.length + many.headerBytes);
    assert.equal(many.status, 400);
    assert.match(many.body.toString(), /at most 100 scopes/);
    assert.ok(many.body.length < 512, `${many.body.length} bytes`);
    // 100 scopes (the most allowed), each bad: 20 described, "and 80 more".
    const hundred = Array.from({ length: 100 }, (_, i) => `bad%5C${i}`).join("+");
    const listed = await request("/oauth2/token", tokenForm(hundred), { ...FORM, ...basic(app.consumerKey, app.consumerSecret) });
    note("/oauth2/token, 100 bad scopes", listed.body.length + listed.headerBytes);
    assert.equal(listed.status, 400);
    const description = (JSON.parse(listed.body.toString()) as { error_description: string }).error_description;
    assert.equal(description.match(/scopes\[\d+\]/g)?.length, 20);
    assert.match(description, /; and 80 more$/);
  });
});

describe("a 4 MB Connect request", () => {
  const huge = () => {
    const message = badResources("big-api");
    // ~4 MB of JSON: the 1000 bad resources, each with a 3 KB template that is too long as well.
    for (const r of message.resource?.resources ?? []) r.uriTemplate = `/${"t".repeat(4000)}`;
    return Buffer.from(toJsonString(RegisterNewResourceRequestSchema, message));
  };
  const path = "/keymanager.v1.KeyManagerService/RegisterNewResource";

  test("unauthenticated: answered 401 from the headers, before the body is read", async () => {
    const body = huge();
    assert.ok(body.length > 4_000_000, `${body.length} bytes`);
    // Only the first 64 KiB are ever sent: the answer cannot wait for the body.
    const res = await request(path, body, { "content-type": "application/json" }, 64 * 1024);
    note("Connect, 4 MB unauthenticated", res.body.length + res.headerBytes);
    assert.equal(res.status, 401);
    assert.equal((JSON.parse(res.body.toString()) as { code: string }).code, "unauthenticated");
  });

  test("authenticated: a short INVALID_ARGUMENT, headers under 8 KiB, /healthz not stalled", async () => {
    const body = huge();
    const healthz = (async () => {
      const started = performance.now();
      await fetch(`http://127.0.0.1:${server.httpPort}/healthz`);
      return performance.now() - started;
    })();
    const res = await request(path, body, { "content-type": "application/json", authorization: `Bearer ${server.token}` });
    note("Connect, 4 MB authenticated", res.body.length + res.headerBytes);
    assert.equal(res.status, 400);
    const error = JSON.parse(res.body.toString()) as { code: string; message: string };
    assert.equal(error.code, "invalid_argument");
    assert.match(error.message, /; and \d+ more$/);
    assert.ok(res.body.length < 16 * 1024, `body of ${res.body.length} bytes`);
    assert.ok(res.headerBytes < HEADER_LIMIT, `headers of ${res.headerBytes} bytes`);
    assert.ok(String(res.headers["x-invalid-fields"]).split(",").length <= 20);
    assert.ok(res.ms < 3000, `answered in ${Math.round(res.ms)} ms`);
    assert.ok((await healthz) < 2000, "/healthz answered meanwhile");
  });

  test("the generated Connect client (HTTP/1.1) gets the error, not a header overflow", async () => {
    const err = await server.connect.registerNewResource(badResources("connect-api")).then(
      () => assert.fail("accepted"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.InvalidArgument, err.message);
    assert.match(err.rawMessage, /; and 980 more$/);
  });
});

describe("the gRPC port, 1000 violations in a 10 KB request", () => {
  let client: grpc.Client;
  before(() => {
    client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(() => client.close());

  function call(method: string, body: Buffer, token: string | undefined): Promise<{ status: grpc.StatusObject; trailerBytes: number; ms: number }> {
    const metadata = new grpc.Metadata();
    if (token) metadata.set("authorization", `Bearer ${token}`);
    const started = performance.now();
    return new Promise((resolve) => {
      const c = client.makeUnaryRequest(
        `/keymanager.v1.KeyManagerService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        metadata,
        { deadline: Date.now() + 10_000 },
        () => undefined,
      );
      c.on("status", (status: grpc.StatusObject) => {
        const trailerBytes =
          Object.entries(status.metadata.toHttp2Headers()).reduce((n, [k, v]) => n + k.length + String(v).length, 0) + encodeURI(status.details).length;
        resolve({ status, trailerBytes, ms: performance.now() - started });
      });
    });
  }

  test("plain grpc-js: INVALID_ARGUMENT at once, trailers under 8 KiB, other calls on the channel not stalled", async () => {
    const body = Buffer.from(toBinary(RegisterNewResourceRequestSchema, badResources("grpc-api")));
    assert.ok(body.length < 40_000, `${body.length} bytes`);
    const others = Array.from({ length: 20 }, () => call("GetKeyManagerConfiguration", Buffer.alloc(0), server.token));
    const { status, trailerBytes, ms } = await call("RegisterNewResource", body, server.token);
    note("gRPC, 1000 violations", trailerBytes);
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT, status.details);
    assert.match(status.details, /; and 980 more$/);
    assert.ok(trailerBytes < HEADER_LIMIT, `trailers of ${trailerBytes} bytes`);
    assert.ok(ms < 3000, `answered in ${Math.round(ms)} ms`);
    for (const other of await Promise.all(others)) assert.equal(other.status.code, grpc.status.OK, other.status.details);
  });

  test("the generated client over gRPC gets the error", async () => {
    const err = await server.grpc.registerNewResource(badResources("grpc-api")).then(
      () => assert.fail("accepted"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.InvalidArgument, err.message);
    assert.ok((err.metadata.get("x-invalid-fields") ?? "").length < HEADER_LIMIT);
  });

  test("an unauthenticated caller is refused before its body is decoded", async () => {
    const undecodable = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const refused = await call("CreateApplication", undecodable, undefined);
    assert.equal(refused.status.code, grpc.status.UNAUTHENTICATED, refused.status.details);
    const decoded = await call("CreateApplication", undecodable, server.token);
    assert.equal(decoded.status.code, grpc.status.INVALID_ARGUMENT, "an authenticated caller learns the body does not decode");
  });

  test("a wrong token with a 4 MB body: UNAUTHENTICATED", async () => {
    const message = badResources("x");
    if (message.resource) message.resource.apiId = "y".repeat(4_000_000);
    const big = Buffer.from(toBinary(RegisterNewResourceRequestSchema, message));
    const refused = await call("RegisterNewResource", big, "not-a-token");
    note("gRPC, 4 MB unauthenticated", refused.trailerBytes);
    assert.equal(refused.status.code, grpc.status.UNAUTHENTICATED);
  });
});

describe("field paths the caller chose", () => {
  // 50 additional properties (the most allowed), each value too long, each key 50 emoji: the
  // field paths name the keys, 12 bytes per emoji once percent-encoded.
  const hostile = () =>
    createRequest({
      additionalProperties: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`${"😀".repeat(49)}${i}`, "v".repeat(2000)])),
    });

  test("gRPC and Connect: the message and x-invalid-fields stay under 8 KiB encoded", async () => {
    for (const [protocol, client] of [
      ["grpc", server.grpc],
      ["connect", server.connect],
    ] as const) {
      const err = await client.createApplication(hostile()).then(
        () => assert.fail("accepted"),
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(err.code, Code.InvalidArgument, err.message);
      const fields = err.metadata.get("x-invalid-fields") ?? "";
      const bytes = encodeURIComponent(err.rawMessage).length + fields.length;
      note(`${protocol}, emoji field paths`, bytes);
      assert.ok(encodeURIComponent(err.rawMessage).length < HEADER_LIMIT, `${protocol}: message of ${encodeURIComponent(err.rawMessage).length} bytes encoded`);
      assert.ok(fields.length < HEADER_LIMIT, `${protocol}: x-invalid-fields of ${fields.length} bytes`);
    }
  });
});

test("the largest error answer provoked here", (t) => {
  const largest = answers.reduce((a, b) => (b.bytes > a.bytes ? b : a), { what: "none", bytes: 0 });
  t.diagnostic(`largest error answer: ${largest.bytes} bytes (${largest.what}); all: ${answers.map((a) => `${a.what} ${a.bytes}`).join(", ")}`);
  assert.ok(answers.length >= 8);
  assert.ok(largest.bytes < 2 * HEADER_LIMIT);
});
