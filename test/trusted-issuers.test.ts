import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import {
  CreateTrustedIssuerRequestSchema,
  CreateTrustedIssuerResponseSchema,
  GetTrustedIssuerRequestSchema,
  GetTrustedIssuerResponseSchema,
  TrustedIssuerService,
} from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PUBLIC_JWK = JSON.stringify(publicKey.export({ format: "jwk" }));
const PRIVATE_JWK = JSON.stringify(privateKey.export({ format: "jwk" }));

const issuer = (name: string, overrides: Record<string, unknown> = {}) => ({
  issuer: `https://${name}.example.com`,
  jwksUri: `https://${name}.example.com/jwks`,
  allowedSubjects: ["alice", "bob"],
  allowedScopes: ["read:orders"],
  maxTokenSeconds: 600n,
  audience: "https://km.example.com/oauth2/token",
  description: `${name} idp`,
  ...overrides,
});

describeOnEachDatabase("TrustedIssuerService", (database) => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ databaseUrl: database.url(), overrides: { paging: { default_page_size: 2, max_page_size: 2 } } });
  });
  after(() => server?.close());

  for (const protocol of ["grpc", "connect"] as const) {
    test(`create, get, update by mask, list in pages, delete (${protocol})`, async () => {
      const api = server.client(TrustedIssuerService, { protocol });
      const name = `idp-${protocol}`;
      const created = (await api.createTrustedIssuer({ trustedIssuer: issuer(name, { issuer: `https://${name}.example.com/` }) })).trustedIssuer;
      assert.ok(created?.createTime && created.updateTime);
      // Stored without the trailing slash, found with or without it.
      assert.equal(created.issuer, `https://${name}.example.com`);
      assert.deepEqual((await api.getTrustedIssuer({ issuer: `https://${name}.example.com/` })).trustedIssuer, created);
      assert.equal(created.maxTokenSeconds, 600n);
      assert.deepEqual(created.allowedSubjects, ["alice", "bob"]);

      // The mask names what changes: a JWK instead of the JWKS URL, any subject, scopes kept.
      const updated = (
        await api.updateTrustedIssuer({
          trustedIssuer: { issuer: created.issuer, jwk: PUBLIC_JWK, allowedSubjects: ["*"], allowedScopes: ["ignored:not-in-mask"] },
          updateMask: { paths: ["jwks_uri", "jwk", "allowed_subjects"] },
        })
      ).trustedIssuer;
      assert.equal(updated?.jwksUri, "");
      assert.equal(updated?.jwk, PUBLIC_JWK);
      assert.deepEqual(updated?.allowedSubjects, ["*"]);
      assert.deepEqual(updated?.allowedScopes, ["read:orders"]);
      assert.equal(updated?.description, `${name} idp`);

      // Without a mask: every updatable field that is set.
      const described = (await api.updateTrustedIssuer({ trustedIssuer: { issuer: created.issuer, description: "renamed" } })).trustedIssuer;
      assert.equal(described?.description, "renamed");
      assert.equal(described?.jwk, PUBLIC_JWK);

      await api.createTrustedIssuer({ trustedIssuer: issuer(`${name}-b`) });
      await api.createTrustedIssuer({ trustedIssuer: issuer(`${name}-c`) });
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await api.listTrustedIssuers({ pageToken });
        assert.ok(page.trustedIssuers.length <= 2);
        seen.push(...page.trustedIssuers.map((i) => i.issuer));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      const ours = seen.filter((i) => i.includes(name));
      assert.deepEqual(ours, [`https://${name}-b.example.com`, `https://${name}-c.example.com`, `https://${name}.example.com`]);
      assert.deepEqual(seen, [...seen].sort());

      await api.deleteTrustedIssuer({ issuer: created.issuer });
      await rejectsWith(api.getTrustedIssuer({ issuer: created.issuer }), Code.NotFound, /no such trusted issuer/);
      await rejectsWith(api.deleteTrustedIssuer({ issuer: created.issuer }), Code.NotFound);
    });
  }

  test("bad input: INVALID_ARGUMENT naming every bad field, nothing written", async () => {
    const api = server.client(TrustedIssuerService);
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ issuer: "" }, /trusted_issuer\.issuer: is required/],
      [{ issuer: "https://bad.example.com/with space" }, /trusted_issuer\.issuer: must be printable ASCII/],
      [{ jwk: PUBLIC_JWK }, /give exactly one of jwks_uri and jwk/],
      [{ jwksUri: "" }, /give exactly one of jwks_uri and jwk/],
      [{ jwksUri: "file:///etc/passwd" }, /jwks_uri: must be an http or https URL/],
      [{ jwksUri: "", jwk: PRIVATE_JWK }, /jwk: must be a public key/],
      [{ jwksUri: "", jwk: '{"kty":"oct","k":"c2VjcmV0"}' }, /jwk: kty must be EC, RSA or OKP/],
      [{ jwksUri: "", jwk: "not json" }, /jwk: is not valid JSON/],
      [{ allowedSubjects: [] }, /allowed_subjects: name at least one subject/],
      [{ allowedScopes: ["has space"] }, /allowed_scopes\[0\]/],
      [{ maxTokenSeconds: -1n }, /max_token_seconds: must be an integer/],
      [{ maxAssertionSeconds: 10n ** 12n }, /max_assertion_seconds: must be an integer/],
      [{ description: "x".repeat(2000) }, /description: must be at most 1024/],
    ];
    for (const [overrides, message] of bad) {
      const input = issuer("bad", overrides);
      await rejectsWith(api.createTrustedIssuer({ trustedIssuer: input }), Code.InvalidArgument, message);
    }
    await rejectsWith(api.getTrustedIssuer({ issuer: "https://bad.example.com" }), Code.NotFound);
    // Several at once, in one answer.
    await rejectsWith(
      api.createTrustedIssuer({ trustedIssuer: { issuer: "", allowedSubjects: [] } }),
      Code.InvalidArgument,
      /issuer: is required.*jwks_uri.*allowed_subjects/,
    );

    await api.createTrustedIssuer({ trustedIssuer: issuer("dup") });
    await rejectsWith(api.createTrustedIssuer({ trustedIssuer: issuer("dup") }), Code.AlreadyExists);
    await rejectsWith(
      api.updateTrustedIssuer({ trustedIssuer: { issuer: "https://dup.example.com" }, updateMask: { paths: ["create_time"] } }),
      Code.InvalidArgument,
      /update_mask: cannot update "create_time"/,
    );
    await rejectsWith(api.updateTrustedIssuer({ trustedIssuer: { issuer: "https://dup.example.com" } }), Code.InvalidArgument, /update_mask/);
    // An update leaving it without a key source is refused whole.
    await rejectsWith(
      api.updateTrustedIssuer({
        trustedIssuer: { issuer: "https://dup.example.com", description: "kept?" },
        updateMask: { paths: ["jwks_uri", "description"] },
      }),
      Code.InvalidArgument,
      /give exactly one of jwks_uri and jwk/,
    );
    assert.equal((await api.getTrustedIssuer({ issuer: "https://dup.example.com" })).trustedIssuer?.description, "dup idp");
    await rejectsWith(api.updateTrustedIssuer({ trustedIssuer: issuer("missing") }), Code.NotFound);
    await rejectsWith(api.getTrustedIssuer({ issuer: "" }), Code.InvalidArgument, /issuer: is required/);
    await rejectsWith(api.listTrustedIssuers({ pageSize: -1 }), Code.InvalidArgument);
    await rejectsWith(api.listTrustedIssuers({ pageToken: "made-up" }), Code.InvalidArgument);
  });

  test("only km:admin may call it: PERMISSION_DENIED otherwise, UNAUTHENTICATED without a token, nothing written", async () => {
    const store = await server.caller(["apim:subscribe"], { subscriber: "erin" });
    const gateway = await server.caller(["km:gateway"]);
    for (const token of [store.token, gateway.token]) {
      const api = server.client(TrustedIssuerService, { token });
      await rejectsWith(api.createTrustedIssuer({ trustedIssuer: issuer("sneaky") }), Code.PermissionDenied, /km:admin/);
      await rejectsWith(api.listTrustedIssuers({}), Code.PermissionDenied, /km:admin/);
    }
    await rejectsWith(server.client(TrustedIssuerService, { token: "" }).createTrustedIssuer({ trustedIssuer: issuer("sneaky") }), Code.Unauthenticated);
    await rejectsWith(server.client(TrustedIssuerService).getTrustedIssuer({ issuer: "https://sneaky.example.com" }), Code.NotFound);
    const admin = await server.caller(["km:admin"]);
    assert.ok((await server.client(TrustedIssuerService, { token: admin.token }).createTrustedIssuer({ trustedIssuer: issuer("admin-made") })).trustedIssuer);
  });

  test("plain grpc-js with the generated binary codecs", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${server.token}`);
    const unary = <Req, Res>(name: string, req: Req, encode: (r: Req) => Uint8Array, decode: (b: Buffer) => Res, md = metadata) =>
      new Promise<Res>((resolve, reject) => {
        client.makeUnaryRequest(
          `/${TrustedIssuerService.typeName}/${name}`,
          (r: Req) => Buffer.from(encode(r)),
          decode,
          req,
          md,
          (err, res) => (err ? reject(err) : resolve(res as Res)),
        );
      });
    try {
      const req = create(CreateTrustedIssuerRequestSchema, { trustedIssuer: issuer("grpc-js") });
      const created = await unary(
        "CreateTrustedIssuer",
        req,
        (r) => toBinary(CreateTrustedIssuerRequestSchema, r),
        (b) => fromBinary(CreateTrustedIssuerResponseSchema, b),
      );
      assert.equal(created.trustedIssuer?.issuer, "https://grpc-js.example.com");
      const got = await unary(
        "GetTrustedIssuer",
        create(GetTrustedIssuerRequestSchema, { issuer: "https://grpc-js.example.com" }),
        (r) => toBinary(GetTrustedIssuerRequestSchema, r),
        (b) => fromBinary(GetTrustedIssuerResponseSchema, b),
      );
      assert.deepEqual(got.trustedIssuer?.allowedSubjects, ["alice", "bob"]);
      await assert.rejects(
        unary(
          "CreateTrustedIssuer",
          create(CreateTrustedIssuerRequestSchema, { trustedIssuer: issuer("grpc-js-bad", { allowedSubjects: [] }) }),
          (r) => toBinary(CreateTrustedIssuerRequestSchema, r),
          (b) => fromBinary(CreateTrustedIssuerResponseSchema, b),
        ),
        (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /allowed_subjects/.test(err.details),
      );
      await assert.rejects(
        unary(
          "GetTrustedIssuer",
          create(GetTrustedIssuerRequestSchema, { issuer: "https://grpc-js.example.com" }),
          (r) => toBinary(GetTrustedIssuerRequestSchema, r),
          (b) => fromBinary(GetTrustedIssuerResponseSchema, b),
          new grpc.Metadata(),
        ),
        (err: grpc.ServiceError) => err.code === grpc.status.UNAUTHENTICATED,
      );
    } finally {
      client.close();
    }
  });
});
