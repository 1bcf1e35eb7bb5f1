// Envoy's external authorization (ext_authz, gRPC mode) on the gRPC port: envoy.service.auth.v3.
// Authorization/Check. No Envoy binary can run here, so a plain grpc-js client built by
// @grpc/proto-loader from the vendored official protos (third_party/, not the server's generated
// code) sends CheckRequests shaped as Envoy sends them: lower-case headers with the pseudo-headers,
// the path with its query, peers, context_extensions.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { type GatewayFixture, gatewayFixture, KITCHEN, PIZZA } from "./support/gateway-fixture.js";
import { startServer, type TestServer } from "./support/server.js";

interface HeaderOption {
  header: { key: string; value: string; rawValue: Buffer };
  appendAction: string;
}
interface CheckResponse {
  status: { code: number; message: string };
  httpResponse: "okResponse" | "deniedResponse";
  okResponse?: { headers: HeaderOption[]; headersToRemove: string[] };
  deniedResponse?: { status: { code: string }; headers: HeaderOption[]; body: string };
  dynamicMetadata: { fields: Record<string, { kind: string; stringValue?: string; numberValue?: number; boolValue?: boolean }> };
}

const definition = protoLoader.loadSync("envoy/service/auth/v3/external_auth.proto", {
  includeDirs: [new URL("../third_party", import.meta.url).pathname],
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
// biome-ignore lint/suspicious/noExplicitAny: the loaded package is untyped by design
const envoy = (grpc.loadPackageDefinition(definition) as any).envoy.service.auth.v3;

let server: TestServer;
let fixture: GatewayFixture;
let gatewayToken: string;
let client: grpc.Client & { check(request: unknown, metadata: grpc.Metadata, callback: (err: grpc.ServiceError | null, res: unknown) => void): void };

before(async () => {
  server = await startServer({ overrides: { gateway: { version_header: "x-api-version", remove_token_header: true } } });
  fixture = await gatewayFixture(server);
  gatewayToken = (await server.caller(["km:gateway"])).token;
  client = new envoy.Authorization(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
});
after(async () => {
  client?.close();
  await server?.close();
});

/** The gateway's own credentials; "" sends none. */
function credentials(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token !== "") metadata.set("authorization", `Bearer ${token}`);
  return metadata;
}

/** A CheckRequest as Envoy's ext_authz filter builds it. */
function envoyRequest(method: string, path: string, headers: Record<string, string> = {}, contextExtensions: Record<string, string> = {}) {
  return {
    attributes: {
      source: { address: { socketAddress: { address: "10.1.2.3", portValue: 53124 } } },
      destination: { address: { socketAddress: { address: "10.1.2.4", portValue: 10000 } } },
      request: {
        time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 },
        http: {
          id: "7106357214385934519",
          method,
          headers: {
            ":authority": "api.example.com",
            ":method": method,
            ":path": path,
            ":scheme": "https",
            "user-agent": "curl/8.5.0",
            accept: "*/*",
            "x-forwarded-proto": "https",
            "x-request-id": "1f3d1bde-6f2b-4c2f-9a52-0d4c2b6d5d7e",
            ...headers,
          },
          path,
          host: "api.example.com",
          scheme: "https",
          protocol: "HTTP/1.1",
        },
      },
      contextExtensions,
    },
  };
}

function check(request: unknown, token = gatewayToken): Promise<CheckResponse> {
  return new Promise((resolve, reject) => {
    client.check(request, credentials(token), (err: grpc.ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res as CheckResponse)));
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const headersOf = (options: HeaderOption[]) => Object.fromEntries(options.map((o) => [o.header.key, o.header.value]));
const metadataOf = (res: CheckResponse) =>
  Object.fromEntries(Object.entries(res.dynamicMetadata.fields).map(([k, v]) => [k, v.stringValue ?? v.numberValue ?? v.boolValue]));

async function denied(res: CheckResponse, httpStatus: string, code: number) {
  assert.equal(res.httpResponse, "deniedResponse", JSON.stringify(res));
  assert.ok(res.deniedResponse);
  assert.equal(res.deniedResponse.status.code, httpStatus);
  assert.notEqual(res.status.code, 0);
  const headers = headersOf(res.deniedResponse.headers);
  assert.equal(headers["x-km-status-code"], String(code));
  assert.equal(headers["content-type"], "application/json; charset=utf-8");
  for (const o of res.deniedResponse.headers) assert.equal(o.appendAction, "OVERWRITE_IF_EXISTS_OR_ADD");
  const body = JSON.parse(res.deniedResponse.body);
  assert.equal(body.code, code);
  assert.equal(typeof body.message, "string");
  assert.equal(typeof body.description, "string");
  assert.equal(metadataOf(res).status_code, code);
  return { headers, body };
}

describe("envoy.service.auth.v3.Authorization/Check", () => {
  test("allowed: ok_response with the upstream headers (overwriting), the token header removed, the decision as dynamic metadata", async () => {
    const res = await check(envoyRequest("GET", "/pizzashack/1.0.0/menu?lang=en", { ...bearer(fixture.appToken), "x-end-user": "mallory" }));
    assert.equal(res.status.code, 0);
    assert.equal(res.httpResponse, "okResponse");
    assert.ok(res.okResponse);
    const headers = headersOf(res.okResponse.headers);
    assert.deepEqual(headers, {
      "x-consumer-key": fixture.consumerKey,
      "x-application-id": fixture.applicationId,
      "x-application-name": "PizzaApp",
      "x-subscription-tier": "Gold",
      "x-key-type": "PRODUCTION",
    });
    for (const o of res.okResponse.headers) assert.equal(o.appendAction, "OVERWRITE_IF_EXISTS_OR_ADD");
    // An application token has no end user: the caller's own x-end-user is taken off.
    assert.deepEqual(res.okResponse.headersToRemove.sort(), ["authorization", "x-end-user"]);
    const metadata = metadataOf(res);
    assert.equal(metadata.authorized, true);
    assert.equal(metadata.status_code, 0);
    assert.equal(metadata.api_name, PIZZA.name);
    assert.equal(metadata.api_version, "1.0.0");
    assert.equal(metadata.matched_resource, "/menu");
    assert.equal(metadata.subscription_tier, "Gold");
    assert.equal(metadata.consumer_key, fixture.consumerKey);
    assert.ok(!JSON.stringify(res).includes(fixture.appToken), "the token is never echoed");

    const user = await check(envoyRequest("GET", "/pizzashack/1.0.0/order/42", bearer(fixture.userToken)));
    assert.ok(user.okResponse);
    assert.equal(headersOf(user.okResponse.headers)["x-end-user"], "alice");
    assert.deepEqual(user.okResponse.headersToRemove, ["authorization"]);
  });

  test("no token: 401, WWW-Authenticate, WSO2's 900902 body", async () => {
    const res = await check(envoyRequest("GET", "/pizzashack/1.0.0/menu"));
    const { headers, body } = await denied(res, "Unauthorized", 900902);
    assert.equal(res.status.code, grpc.status.UNAUTHENTICATED);
    assert.equal(headers["www-authenticate"], 'Bearer error="invalid_token"');
    assert.equal(body.message, "Missing Credentials");
    // Not a bearer token: missing too.
    await denied(await check(envoyRequest("GET", "/pizzashack/1.0.0/menu", { authorization: "Basic YWxpY2U6c2VjcmV0" })), "Unauthorized", 900902);
  });

  test("bad token: 401, 900901", async () => {
    const res = await check(envoyRequest("GET", "/pizzashack/1.0.0/menu", bearer("not-a-token-of-ours")));
    const { headers, body } = await denied(res, "Unauthorized", 900901);
    assert.equal(headers["www-authenticate"], 'Bearer error="invalid_token"');
    assert.equal(body.message, "Invalid Credentials");
  });

  test("not subscribed: 403, 900908, naming the application", async () => {
    const res = await check(envoyRequest("GET", "/pizzashack/1.0.0/menu", bearer(fixture.unsubscribedToken)));
    const { headers, body } = await denied(res, "Forbidden", 900908);
    assert.equal(res.status.code, grpc.status.PERMISSION_DENIED);
    assert.equal(headers["www-authenticate"], undefined);
    assert.match(body.description, /"LonelyApp".* has no subscription to API "PizzaShackAPI"/);
  });

  test("wrong verb: 403, 900906", async () => {
    const res = await check(envoyRequest("DELETE", "/pizzashack/1.0.0/menu", bearer(fixture.appToken)));
    const { body } = await denied(res, "Forbidden", 900906);
    assert.match(body.description, /no resource of API "PizzaShackAPI" .* matches "DELETE" "\/pizzashack\/1.0.0\/menu"/);
  });

  test("unknown API: 403, 900908, naming the path without its query", async () => {
    const res = await check(envoyRequest("GET", "/burgers/1.0.0/menu?key=secret", bearer(fixture.appToken)));
    const { body } = await denied(res, "Forbidden", 900908);
    assert.equal(body.description, 'no API is deployed at request path "/burgers/1.0.0/menu"');
  });

  test("the API by the longest context; version from the path, context_extensions or the version header", async () => {
    const kitchen = await check(envoyRequest("GET", "/pizzashack/kitchen/2.0/ovens/3", bearer(fixture.appToken)));
    assert.equal(kitchen.status.code, 0, JSON.stringify(kitchen.deniedResponse));
    assert.equal(metadataOf(kitchen).api_name, KITCHEN.name);
    assert.equal(headersOf(kitchen.okResponse?.headers ?? [])["x-subscription-tier"], "Silver");

    const byExtension = await check(envoyRequest("GET", "/pizzashack/menu", bearer(fixture.appToken), { version: "1.0.0" }));
    assert.equal(byExtension.status.code, 0);
    assert.equal(metadataOf(byExtension).matched_resource, "/menu");
    const byHeader = await check(envoyRequest("GET", "/pizzashack/menu", { ...bearer(fixture.appToken), "x-api-version": "1.0.0" }));
    assert.equal(byHeader.status.code, 0);
    await denied(await check(envoyRequest("GET", "/pizzashack/menu", bearer(fixture.appToken), { version: "9.9" })), "Forbidden", 900908);
    // Without a version anywhere the segment after the context is taken as one: none here.
    await denied(await check(envoyRequest("GET", "/pizzashack/menu", bearer(fixture.appToken))), "Forbidden", 900908);
  });

  test("header_map (Envoy's encode_raw_headers) is read as headers is; auth level None needs no token", async () => {
    const request = envoyRequest("GET", "/pizzashack/1.0.0/menu");
    const http = request.attributes.request.http as Record<string, unknown>;
    http.headers = {};
    http.headerMap = {
      headers: [
        { key: ":path", rawValue: Buffer.from("/pizzashack/1.0.0/menu") },
        { key: "authorization", rawValue: Buffer.from(`Bearer ${fixture.appToken}`) },
      ],
    };
    assert.equal((await check(request)).status.code, 0);
    const open = await check(envoyRequest("GET", "/pizzashack/1.0.0/open"));
    assert.equal(open.status.code, 0);
    assert.deepEqual(open.okResponse?.headers, []);
    assert.ok(open.okResponse?.headersToRemove.includes("x-consumer-key"));
  });

  test("the same decision as ValidateToken with request_path", async () => {
    const validate = server.client(TokenValidationService);
    const cases: [string, string, string][] = [
      ["GET", "/pizzashack/1.0.0/menu", fixture.appToken],
      ["POST", "/pizzashack/1.0.0/order", fixture.appToken],
      ["GET", "/pizzashack/1.0.0/menu", fixture.unsubscribedToken],
      ["PUT", "/pizzashack/1.0.0/menu", fixture.appToken],
      ["GET", "/pizzashack/1.0.0/menu", "expired-or-unknown"],
    ];
    for (const [verb, path, token] of cases) {
      const viaCheck = metadataOf(await check(envoyRequest(verb, path, bearer(token))));
      const viaValidate = await validate.validateToken({
        context: PIZZA.context,
        version: PIZZA.version,
        accessToken: token,
        requestPath: path,
        httpVerb: verb,
        requiredAuthLevel: AuthLevel.UNSPECIFIED,
      });
      assert.equal(viaCheck.status_code, viaValidate.statusCode, `${verb} ${path}`);
    }
  });

  test("a new API is found at once (the list follows API changes)", async () => {
    const path = "/fresh/1.0/menu";
    await denied(await check(envoyRequest("GET", path, bearer(fixture.appToken))), "Forbidden", 900908);
    await server
      .client(SubscriptionService)
      .createApi({ api: { apiId: "fresh", name: "Fresh", context: "/fresh", version: "1.0", publisher: "admin", apiTier: "" } });
    await server.grpc.registerNewResource({
      resource: { apiId: "fresh", resources: [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "" }] },
    });
    const res = await check(envoyRequest("GET", path, bearer(fixture.appToken)));
    const { body } = await denied(res, "Forbidden", 900908);
    assert.match(body.description, /has no subscription to API "Fresh"/);
  });

  test("callers need km:gateway (or a gateway certificate): none, a store token, an API caller's token are refused", async () => {
    const request = envoyRequest("GET", "/pizzashack/1.0.0/menu", bearer(fixture.appToken));
    await assert.rejects(check(request, ""), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED);
    const store = (await server.caller(["apim:subscribe"], { subscriber: "store" })).token;
    await assert.rejects(check(request, store), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED && /km:gateway/.test(err.details));
    await assert.rejects(check(request, fixture.appToken), (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED);
  });

  test("a CheckRequest without the HTTP request is INVALID_ARGUMENT", async () => {
    await assert.rejects(
      check({ attributes: {} }),
      (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /attributes\.request\.http/.test(err.details),
    );
  });
});
