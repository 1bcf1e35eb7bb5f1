/**
 * Property-based tests (fast-check) of hostile and broken input, on every RPC of every service
 * (enumerated from the generated descriptors) and on the HTTP endpoints:
 * - gRPC port: random messages built from each method's input descriptor (huge, control-character
 *   and lone-surrogate strings, any int32 as an enum, long lists and maps) through the generated
 *   clients; valid requests of the changing methods with one or two fields made hostile; random,
 *   mutated and hand-framed broken bytes (invalid UTF-8, truncated varints, bad wire types) as the
 *   body with a plain grpc-js client; a body over the 4 MiB limit; random `authorization` values;
 *   callers holding one scope each;
 * - HTTP port: Connect JSON with random bodies, Connect binary and gRPC-Web with random bytes,
 *   the OAuth2 token/introspect/revoke endpoints with random forms and client authentication,
 *   and the Store REST keys endpoint.
 *
 * What must hold for all of it:
 * - the server never answers INTERNAL (13) / UNKNOWN (2), or HTTP 5xx, to a client's mistake
 *   (connect-es answers undecodable binary bodies INTERNAL; src/transport/undecodable-bodies.ts
 *   answers them first, and this checks it);
 * - a rejected call writes nothing: after each call the tables are compared with those before it
 *   (read again whenever the server has committed anything, see `observe`);
 * - the server keeps answering (health on both ports) after the run.
 *
 * A random request may be accepted (ValidateToken always answers, CreateApi with random but valid
 * fields creates an API): that counts as accepted and only the first rule applies to it.
 * FC_SEED=<n> replays a run; FC_RUNS=<n> scales the run counts; FC_VERBOSE=1 counts per method.
 */
import { gzipSync } from "node:zlib";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { create, type DescField, type DescMessage, type DescMethod, type DescService, ScalarType, toBinary, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as fc from "fast-check";
import type { Knex } from "knex";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SigningKeyService } from "../gen/keymanager/v1/signing_key_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { TrustedIssuerService } from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { createRequest, sampleResources } from "./support/fixtures.js";
import { bearer, startServer, type TestServer } from "./support/server.js";

const SERVICES: readonly DescService[] = [
  KeyManagerService,
  TokenValidationService,
  SubscriptionService,
  UserService,
  SigningKeyService,
  SystemClientService,
  TrustedIssuerService,
  ScopeService,
];
const METHODS: ReadonlyArray<{ service: DescService; method: DescMethod; path: string }> = SERVICES.flatMap((service) =>
  service.methods.map((method) => ({ service, method, path: `/${service.typeName}/${method.name}` })),
);

async function* oneMessage(message: unknown): AsyncIterable<unknown> {
  yield message;
}

const SCALE = Number(process.env.FC_RUNS ?? "1");
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const fcOptions = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns: runs(numRuns),
  includeErrorInReport: true,
  ...(SEED === undefined ? {} : { seed: SEED }),
});

const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const TABLES = ["oauth_clients", "application_keys", "api_resources", "access_tokens", "users", "apis", "subscriptions", "signing_keys"];

let server: TestServer;
let db: Knex;
let raw: grpc.Client;
/** An application's OAuth client (the valid client authentication of the OAuth2 endpoints). */
let app: { consumerKey: string; consumerSecret: string; applicationId: string };
/** An application the random requests may name (and change). */
let target: { consumerKey: string; consumerSecret: string; applicationId: string };
let subscriptionId = "";
/** Strings a request may carry that reach past "unknown id": existing ids, names, field names. */
let pool: string[];

/** What the run did, stated in the output. */
const tally = { properties: 0, runs: 0, calls: 0, accepted: 0, rejected: 0, snapshots: 0, codes: new Map<string, number>() };
/** Per part of the run (and per method with FC_VERBOSE=1): calls, rejected, accepted. */
const parts = new Map<string, { calls: number; rejected: number; accepted: number }>();
let part = "";

// ---------------------------------------------------------------------------------------------
// The database before and after each call
// ---------------------------------------------------------------------------------------------

/** Every table's contents (as in bad-input.test.ts), as one string: cheap to compare. */
async function snapshot(): Promise<string> {
  const rows: unknown[] = [];
  for (const t of TABLES) rows.push(await db(t).select().orderBy([1, 2]));
  return JSON.stringify(rows, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/** The tables as they were after the last observed call. */
let current = "";
/**
 * SQLite's data_version of this test's own connection (the pool holds exactly one): it changes
 * when another connection, the server's, commits. Unchanged means no table changed, so the
 * tables are read again only when it moves.
 */
let currentVersion = -1;
async function dataVersion(): Promise<number> {
  const rows = (await db.raw("PRAGMA data_version")) as Array<{ data_version: number }>;
  return rows[0]!.data_version;
}
async function resetSnapshot(): Promise<void> {
  currentVersion = await dataVersion();
  current = await snapshot();
}

interface Outcome {
  accepted: boolean;
  /** gRPC code name or HTTP status, for the tally and messages. */
  code: string;
}

/**
 * Records one call's outcome, and for a rejected call checks that no table changed. Calls are
 * made one at a time, so the snapshot after one call is the snapshot before the next.
 */
async function observe(label: string, outcome: Outcome): Promise<void> {
  tally.calls++;
  if (outcome.accepted) tally.accepted++;
  else tally.rejected++;
  tally.codes.set(outcome.code, (tally.codes.get(outcome.code) ?? 0) + 1);
  for (const key of process.env.FC_VERBOSE ? [part, `${part} ${label.split(" ")[0]}`, `${part} ${outcome.code}`] : [part]) {
    const p = parts.get(key) ?? { calls: 0, rejected: 0, accepted: 0 };
    p.calls++;
    if (outcome.accepted) p.accepted++;
    else p.rejected++;
    parts.set(key, p);
  }
  const version = await dataVersion();
  if (version === currentVersion) return;
  tally.snapshots++;
  const now = await snapshot();
  if (!outcome.accepted && now !== current) {
    assert.deepEqual(JSON.parse(now), JSON.parse(current), `${label}: rejected with ${outcome.code} but wrote to the database`);
  }
  current = now;
  currentVersion = version;
}

/** Runs a property, counting it and its runs. */
async function check<T>(arb: fc.Arbitrary<T>, numRuns: number, predicate: (value: T) => Promise<void>): Promise<void> {
  tally.properties++;
  await fc.assert(
    fc.asyncProperty(arb, async (value) => {
      tally.runs++;
      await predicate(value);
    }),
    fcOptions(numRuns),
  );
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const CONTROL = fc.constantFrom("\u0000", "\u0001", "\u0007", "\b", "\t", "\n", "\r", "\u001b", "\u007f", "\u0085", "\u2028", "\u202e", "\ufeff", "\ufffe");
const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** Up to 100k characters of one unit: ASCII, two-byte, astral, NUL, a lone surrogate, separators. */
const hugeString = fc
  .tuple(fc.constantFrom("a", "é", "😀", "\u0000", "\ud800", "/", " ", "%", "{", ":"), fc.integer({ min: 256, max: 100_000 }))
  .map(([unit, n]) => unit.repeat(n));

function stringArb(): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 5, arbitrary: fc.constantFrom(...pool) },
    { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
    { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 6 }), loneSurrogate, fc.string({ maxLength: 6 })).map(([a, s, b]) => a + s + b) },
    { weight: 1, arbitrary: fc.string({ unit: CONTROL, minLength: 1, maxLength: 8 }) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...pool), fc.oneof(CONTROL, loneSurrogate, fc.constantFrom(" ", "/", "..", "#", "?", "*", "%00")))
        .map(([a, b]) => a + b),
    },
    { weight: 1, arbitrary: hugeString },
  );
}

const INT32 = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1, 2147483647, -2147483648));
const UINT32 = fc.oneof(fc.integer({ min: 0, max: 4294967295 }), fc.constantFrom(0, 1, 4294967295));
const INT64 = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  fc.bigInt({ min: -100_000n, max: 100_000n }),
  fc.constantFrom(0n, -1n, 1n, 3600n, 2n ** 31n, 2n ** 53n, 2n ** 63n - 1n, -(2n ** 63n)),
);
const UINT64 = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 64n - 1n));

function scalarArb(type: ScalarType, longAsString: boolean): fc.Arbitrary<unknown> {
  const long = (a: fc.Arbitrary<bigint>) => (longAsString ? a.map(String) : a);
  switch (type) {
    case ScalarType.STRING:
      return stringArb();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.DOUBLE:
      return fc.double();
    case ScalarType.FLOAT:
      return fc.float();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return INT32;
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return UINT32;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return long(INT64);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return long(UINT64);
  }
}

/** Known values and any int32, unknown ones included. */
function enumArb(desc: { values: ReadonlyArray<{ number: number }> }): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(...desc.values.map((v) => v.number)), INT32);
}

function mapKeyArb(type: ScalarType): fc.Arbitrary<string> {
  switch (type) {
    case ScalarType.STRING:
      return fc.oneof(
        fc.constantFrom(...pool),
        fc.string({ maxLength: 12 }),
        fc.string({ unit: "binary", maxLength: 6 }),
        fc.string({ unit: CONTROL, maxLength: 3 }),
      );
    case ScalarType.BOOL:
      return fc.constantFrom("true", "false");
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return (type === ScalarType.UINT64 || type === ScalarType.FIXED64 ? UINT64 : INT64).map(String);
    default:
      return (type === ScalarType.UINT32 || type === ScalarType.FIXED32 ? UINT32 : INT32).map(String);
  }
}

const MAX_DEPTH = 3;

/** A value of one field (list and map included). */
function fieldArb(field: DescField, depth: number): fc.Arbitrary<unknown> {
  const element = (kind: "scalar" | "enum" | "message"): fc.Arbitrary<unknown> => {
    if (kind === "enum" && field.enum) return enumArb(field.enum);
    if (kind === "message" && field.message) return messageArb(field.message, depth + 1);
    return scalarArb(field.scalar ?? ScalarType.STRING, "longAsString" in field && field.longAsString === true);
  };
  switch (field.fieldKind) {
    case "scalar":
      return scalarArb(field.scalar, field.longAsString);
    case "enum":
      return enumArb(field.enum);
    case "message":
      return messageArb(field.message, depth + 1);
    case "list": {
      const item = element(field.listKind);
      // Mostly short lists; sometimes past the limits the services set (100 scopes, 50 properties).
      return field.listKind === "message"
        ? fc.array(item, { maxLength: 4 })
        : fc.oneof({ weight: 9, arbitrary: fc.array(item, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.array(item, { minLength: 90, maxLength: 160 }) });
    }
    case "map": {
      const value = element(field.mapKind);
      return fc.oneof(
        { weight: 9, arbitrary: fc.dictionary(mapKeyArb(field.mapKey), value, { maxKeys: 6 }) },
        { weight: 1, arbitrary: fc.dictionary(mapKeyArb(field.mapKey), value, { minKeys: 45, maxKeys: 70 }) },
      );
    }
  }
}

const messageArbs = new Map<string, fc.Arbitrary<Record<string, unknown> | undefined>>();

/** A random init object of a message: any subset of its fields and at most one case of each oneof. */
function messageArb(desc: DescMessage, depth = 0): fc.Arbitrary<Record<string, unknown> | undefined> {
  if (depth > MAX_DEPTH) return fc.constant(undefined);
  const key = `${desc.typeName}@${depth}`;
  const known = messageArbs.get(key);
  if (known) return known;
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    if (member.kind === "field") {
      model[member.localName] = fieldArb(member, depth);
    } else {
      model[member.localName] = fc.oneof(...member.fields.map((f) => fieldArb(f, depth).map((value) => ({ case: f.localName, value }))));
    }
  }
  const arb = fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>;
  messageArbs.set(key, arb);
  return arb;
}

/** Protobuf wire helpers, to frame broken messages by hand. */
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
const lengthDelimited = (fieldNo: number, bytes: readonly number[]) => [...varint((fieldNo << 3) | 2), ...varint(bytes.length), ...bytes];

/** Each string field reachable within two levels, as the bytes of a message putting `bytes` there. */
function stringFieldFrames(desc: DescMessage, bytes: readonly number[], depth = 0): Array<{ field: string; frame: number[] }> {
  const out: Array<{ field: string; frame: number[] }> = [];
  for (const f of desc.fields) {
    const stringy =
      (f.fieldKind === "scalar" && f.scalar === ScalarType.STRING) || (f.fieldKind === "list" && f.listKind === "scalar" && f.scalar === ScalarType.STRING);
    if (stringy) out.push({ field: f.name, frame: lengthDelimited(f.number, bytes) });
    if (f.fieldKind === "map" && f.mapKey === ScalarType.STRING)
      out.push({ field: `${f.name}{key}`, frame: lengthDelimited(f.number, lengthDelimited(1, bytes)) });
    if (f.fieldKind === "map" && f.mapKind === "scalar" && f.scalar === ScalarType.STRING) {
      out.push({ field: `${f.name}{value}`, frame: lengthDelimited(f.number, [...lengthDelimited(1, [0x6b]), ...lengthDelimited(2, bytes)]) });
    }
    const nested = f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message") ? f.message : undefined;
    if (nested && depth < 1) {
      for (const inner of stringFieldFrames(nested, bytes, depth + 1))
        out.push({ field: `${f.name}.${inner.field}`, frame: lengthDelimited(f.number, inner.frame) });
    }
  }
  return out;
}

/** Broken framings every message decoder must refuse (or skip) without falling over. */
const BROKEN_FRAMES: ReadonlyArray<[string, number[]]> = [
  ["truncated varint", [0x08, 0xff]],
  ["truncated 10-byte varint", [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]],
  ["overlong varint", [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
  ["length past the end", [0x0a, 0x10, 0x61]],
  ["huge length", [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x61]],
  ["field number 0", [0x00, 0x01]],
  ["wire type 7", [0x0f, 0x00]],
  ["wire type 6", [0x0e, 0x00]],
  ["unterminated group", [0x0b]],
  ["unmatched end group", [0x0c]],
  ["truncated fixed64", [0x09, 0x01, 0x02]],
  ["truncated fixed32", [0x0d, 0x01]],
  ["varint where a string is", [0x08, 0x01, 0x10, 0x96, 0x01]],
  ["string where a varint is", [0x0a, 0x01, 0x61, 0x12, 0x01, 0x61, 0x1a, 0x01, 0x61, 0x22, 0x01, 0x61, 0x20, 0x01]],
  ["deeply nested length-delimited", Array.from({ length: 200 }, () => [0x0a, 0x00]).flat()],
];

// ---------------------------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------------------------

function codeName(code: number): string {
  return code === 0 ? "OK" : (Code[code] ?? `code ${code}`);
}

/** The server's answer to a client's mistake is never INTERNAL or UNKNOWN. */
function assertNotServerFault(label: string, code: number, message: string): void {
  assert.ok(code !== Code.Internal && code !== Code.Unknown, `${label}: answered ${codeName(code)} (${message})`);
}

/** A unary call on the gRPC port with raw bytes as the request body. */
function rawCall(path: string, body: Buffer, authorization: string | null = `Bearer ${server.token}`): Promise<{ code: number; details: string }> {
  const metadata = new grpc.Metadata();
  if (authorization !== null) metadata.add("authorization", authorization);
  return new Promise((resolve) => {
    raw.makeUnaryRequest(
      path,
      (b: Buffer) => b,
      (b: Buffer) => b,
      body,
      metadata,
      { deadline: Date.now() + 20_000 },
      (err: grpc.ServiceError | null) => resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "" }),
    );
  });
}

const show = (value: unknown) => {
  const text =
    JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v)) ?? String(value);
  return text.length > 300 ? `${text.slice(0, 300)}… (${text.length} chars)` : text;
};

/** Percent-encoding of any string; one with lone surrogates gets the invalid UTF-8 of one instead. */
function percentEncode(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return `${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, ""))}%ED%A0%80`;
  }
}

function rpcUrl(path: string): string {
  return `http://127.0.0.1:${server.httpPort}${path}`;
}

async function post(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(rpcUrl(path), { method: "POST", headers, body });
  return { status: res.status, text: await res.text() };
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  server = await startServer();
  db = createKnex({ url: `sqlite:${join(server.dataDir, "keymanager.db")}`, poolMax: 1 });
  raw = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1 });

  // The OAuth2 endpoints' valid client; kept out of the random requests, whose wrong secrets
  // for it would pause it (failed authentications are throttled).
  const created = (await server.grpc.createApplication(createRequest({ clientName: "fuzz oauth client" }))).application;
  assert.ok(created);
  app = created;
  // Something for random requests to hit: an application, resources, an API and a subscription, a user, a token.
  const created2 = (await server.grpc.createApplication(createRequest({ clientName: "fuzz target" }))).application;
  assert.ok(created2);
  target = created2;
  await server.grpc.registerNewResource({ resource: { apiId: "fuzz-api", resources: sampleResources() } });
  await server.client(ScopeService).registerScope({ scope: { name: "read:orders" } });
  const subs = server.client(SubscriptionService);
  await subs.createApi({ api: { apiId: "fuzz-api", name: "FuzzAPI", context: "/fuzz", version: "1.0.0", publisher: "admin", apiTier: "Gold" } });
  const subscription = (await subs.createSubscription({ subscription: { applicationId: target.applicationId, apiId: "fuzz-api", tier: "Gold" } })).subscription;
  subscriptionId = subscription?.subscriptionId ?? "";
  await server.client(UserService).createUser({ user: { username: "fuzz-user" }, password: "correct horse battery" });
  await server.client(TrustedIssuerService).createTrustedIssuer({
    trustedIssuer: { issuer: "https://fuzz-issuer.example.com", jwksUri: "https://fuzz-issuer.example.com/jwks", allowedSubjects: ["*"] },
  });
  const issued = await server.grpc.getNewApplicationAccessToken({
    request: { clientId: target.consumerKey, clientSecret: target.consumerSecret, grantType: "client_credentials" },
  });

  const fieldNames = new Set<string>();
  const enumNames = new Set<string>();
  const visit = (m: DescMessage, seen: Set<string>) => {
    if (seen.has(m.typeName)) return;
    seen.add(m.typeName);
    for (const f of m.fields) {
      fieldNames.add(f.name);
      if (f.enum) for (const v of f.enum.values) enumNames.add(v.name);
      if (f.message) visit(f.message, seen);
    }
  };
  const seen = new Set<string>();
  for (const { method } of METHODS) visit(method.input, seen);
  pool = [
    "",
    " ",
    target.consumerKey,
    target.applicationId,
    "fuzz-api",
    "fuzz-user",
    "https://fuzz-issuer.example.com",
    subscription?.subscriptionId ?? "",
    issued.token?.accessToken ?? "",
    "admin",
    "client_credentials",
    "password",
    "refresh_token",
    "authorization_code",
    "implicit",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "https://a.example/cb",
    "http://localhost/cb",
    "/orders",
    "/orders/{id}",
    "GET",
    "POST",
    "read:orders",
    "openid",
    "Gold",
    "Unlimited",
    "1.0.0",
    "/fuzz",
    "correct horse battery",
    "00000000-0000-0000-0000-000000000000",
    "../etc/passwd",
    "'; DROP TABLE oauth_clients; --",
    "%",
    "_",
    "\\",
    ...fieldNames,
    ...enumNames,
  ].filter((s, i, all) => all.indexOf(s) === i);
  await resetSnapshot();
});

after(async () => {
  raw?.close();
  await db?.destroy();
  await server?.close();
});

describe("hostile input: no server fault, nothing written by a rejected call", () => {
  beforeEach(async (t) => {
    part = t.name;
    // Each test starts from what the tables hold now (a failed test may have left a call unobserved).
    await resetSnapshot();
  });

  test("the write detector sees a write by the server (and only then reads the tables)", async () => {
    const before = currentVersion;
    assert.equal(await dataVersion(), before, "nothing was written since the last snapshot");
    await server.client(UserService).createUser({ user: { username: "detector-canary" }, password: "correct horse battery" });
    assert.notEqual(await dataVersion(), before, "the server's commit moved data_version");
    const snapshots = tally.snapshots;
    await observe("canary", { accepted: true, code: "OK" });
    assert.equal(tally.snapshots, snapshots + 1);
    assert.match(current, /detector-canary/);
  });

  test("gRPC port: random valid-shaped messages through the generated clients, every method", async () => {
    for (const service of SERVICES) {
      const client = createClient(
        service,
        createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}`, interceptors: [bearer(server.token)] }),
      ) as unknown as Record<string, (req: unknown, opts: { timeoutMs: number }) => Promise<unknown>>;
      for (const method of service.methods) {
        const label = `${service.name}/${method.name}`;
        await check(messageArb(method.input) as fc.Arbitrary<Record<string, unknown>>, 40, async (request) => {
          let outcome: Outcome;
          try {
            if (method.methodKind === "bidi_streaming") {
              // A stream of the one message (ValidateTokens): its answers read to the end.
              const answers = client[method.localName]!(oneMessage(request ?? {}), { timeoutMs: 20_000 }) as unknown as AsyncIterable<unknown>;
              for await (const _ of answers);
            } else await client[method.localName]!(request ?? {}, { timeoutMs: 20_000 });
            outcome = { accepted: true, code: "OK" };
          } catch (err) {
            const ce = ConnectError.from(err);
            assertNotServerFault(`${label} ${show(request)}`, ce.code, ce.rawMessage);
            outcome = { accepted: false, code: codeName(ce.code) };
          }
          await observe(`${label} ${show(request)}`, outcome);
        });
      }
    }
  });

  test("gRPC port: valid requests of the changing methods with one or two fields made hostile", async () => {
    // A valid request (fresh ids from `id`) with some fields replaced by random values: rejected
    // late, after other fields passed, is where a partial write would show.
    const templates: Record<string, (id: string) => Record<string, unknown>> = {
      "KeyManagerService/CreateApplication": (id) => createRequest({ applicationId: id, clientName: `near ${id}`, callbackUrls: ["https://a.example/cb"] }),
      "KeyManagerService/UpdateApplication": () => ({
        application: {
          consumerKey: target.consumerKey,
          clientName: "fuzz target",
          grantTypes: ["client_credentials", "refresh_token"],
          callbackUrls: ["https://a.example/cb"],
        },
      }),
      "KeyManagerService/MapOAuthApplication": (id) => ({
        application: {
          applicationId: id,
          keyType: KeyType.SANDBOX,
          consumerKey: `mapped-${id}`,
          consumerSecret: "mapped secret",
          clientName: "mapped",
        },
      }),
      "KeyManagerService/RegisterNewResource": (id) => ({ resource: { apiId: `api-${id}`, resources: sampleResources() } }),
      "KeyManagerService/UpdateRegisteredResource": () => ({ resource: { apiId: "fuzz-api", resources: sampleResources() } }),
      "KeyManagerService/RevokeToken": (id) => ({ token: id, tokenTypeHint: "access_token" }),
      "SubscriptionService/CreateApi": (id) => ({
        api: { apiId: `api-${id}`, name: "Near", context: `/near-${id.slice(0, 8)}`, version: "1.0.0", publisher: "admin", apiTier: "Gold" },
      }),
      "SubscriptionService/UpdateApi": () => ({
        api: { apiId: "fuzz-api", name: "FuzzAPI", context: "/fuzz", version: "1.0.0", publisher: "admin", apiTier: "Gold" },
      }),
      "SubscriptionService/CreateSubscription": (id) => ({ subscription: { applicationId: id, apiId: "fuzz-api", tier: "Gold" } }),
      "SubscriptionService/UpdateSubscription": () => ({ subscription: { subscriptionId, tier: "Gold", state: 1 } }),
      "UserService/CreateUser": (id) => ({ user: { username: `user-${id.slice(0, 8)}` }, password: "correct horse battery" }),
      "UserService/SetUserPassword": () => ({ username: "fuzz-user", password: "another horse battery" }),
      "SystemClientService/CreateSystemClient": (id) => ({ systemClient: { name: `near ${id}`, scopes: ["km:gateway"] } }),
      "TrustedIssuerService/CreateTrustedIssuer": (id) => ({
        trustedIssuer: {
          issuer: `https://${id}.example.com`,
          jwksUri: `https://${id}.example.com/jwks`,
          allowedSubjects: ["alice"],
          allowedScopes: ["read:orders"],
        },
      }),
      "TrustedIssuerService/UpdateTrustedIssuer": () => ({ trustedIssuer: { issuer: "https://fuzz-issuer.example.com", description: "near" } }),
      "ScopeService/RegisterScope": (id) => ({ scope: { name: `near:${id.slice(0, 8)}`, displayName: "Near", roles: ["chef"] } }),
      "ScopeService/UpdateScope": () => ({ scope: { name: "read:orders", description: "near", roles: ["chef"] } }),
      "ScopeService/AttachResourceScopes": () => ({ apiId: "fuzz-api", resources: [{ uriTemplate: "/orders", httpVerb: "GET", scopes: ["read:orders"] }] }),
    };
    for (const { service, method } of METHODS) {
      const label = `${service.name}/${method.name}`;
      const template = templates[label];
      if (!template) continue;
      // Every field outside a oneof, and those of a message field the template fills in.
      const sample = template("00000000-0000-4000-8000-000000000000");
      const paths: Array<{ path: string[]; field: DescField }> = [];
      for (const f of method.input.fields) {
        if (f.oneof) continue;
        paths.push({ path: [f.localName], field: f });
        if (f.fieldKind === "message" && typeof sample[f.localName] === "object") {
          for (const inner of f.message.fields) if (!inner.oneof) paths.push({ path: [f.localName, inner.localName], field: inner });
        }
      }
      const change = fc.constantFrom(...paths).chain(({ path, field }) => fieldArb(field, path.length).map((value) => ({ path, value })));
      const client = server.client(service) as unknown as Record<string, (req: unknown, opts: { timeoutMs: number }) => Promise<unknown>>;
      await check(fc.tuple(fc.uuid({ version: 4 }), fc.array(change, { maxLength: 2 })), 30, async ([id, changes]) => {
        const request = template(id) as Record<string, Record<string, unknown>>;
        for (const { path, value } of changes) {
          if (path.length === 1) request[path[0]!] = value as never;
          else request[path[0]!] = { ...request[path[0]!], [path[1]!]: value };
        }
        const what = `${label} ${show(changes.map((c) => ({ [c.path.join(".")]: c.value })))}`;
        let outcome: Outcome;
        try {
          await client[method.localName]!(request, { timeoutMs: 20_000 });
          outcome = { accepted: true, code: "OK" };
        } catch (err) {
          const ce = ConnectError.from(err);
          assertNotServerFault(what, ce.code, ce.rawMessage);
          outcome = { accepted: false, code: codeName(ce.code) };
        }
        await observe(what, outcome);
      });
    }
  });

  test("gRPC port: random and broken bytes as the protobuf body, every method", async () => {
    for (const { service, method, path } of METHODS) {
      const label = `${service.name}/${method.name}`;
      const random = fc.uint8Array({ maxLength: 200 }).map((b) => ({ what: "random bytes", bytes: Buffer.from(b) }));
      // A valid encoding of a random message, then cut short or with one byte changed.
      const mutated = fc.tuple(messageArb(method.input), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()).map(([init, at, byte, cut]) => {
        const bytes = Buffer.from(toBinary(method.input, create(method.input, (init ?? {}) as never)));
        if (bytes.length === 0) return { what: "empty", bytes };
        const i = at % bytes.length;
        if (cut) return { what: `cut at ${i}`, bytes: bytes.subarray(0, i) };
        bytes[i] = byte;
        return { what: `byte ${i} = ${byte}`, bytes };
      });
      const invalidUtf8 = stringFieldFrames(method.input, [0x61, 0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]).map(({ field, frame }) => ({
        what: `invalid UTF-8 in ${field}`,
        bytes: Buffer.from(frame),
      }));
      const broken = BROKEN_FRAMES.map(([what, bytes]) => ({ what, bytes: Buffer.from(bytes) }));
      const cases = fc.oneof(random, mutated, fc.constantFrom(...broken, ...invalidUtf8));
      await check(cases, 30, async ({ what, bytes }) => {
        const res = await rawCall(path, bytes);
        assertNotServerFault(`${label} (${what}: ${bytes.subarray(0, 40).toString("hex")})`, res.code, res.details);
        await observe(`${label} (${what})`, { accepted: res.code === 0, code: codeName(res.code) });
      });
      // Every invalid-UTF-8 framing once, not only those the property happened to pick.
      for (const { what, bytes } of invalidUtf8) {
        tally.runs++;
        const res = await rawCall(path, bytes);
        assertNotServerFault(`${label} (${what})`, res.code, res.details);
        assert.notEqual(res.code, 0, `${label}: ${what} was accepted`);
        await observe(`${label} (${what})`, { accepted: false, code: codeName(res.code) });
      }
    }
  });

  test("a message over the 4 MiB limit is refused: RESOURCE_EXHAUSTED on the gRPC port, 4xx on the HTTP port", async () => {
    for (const service of SERVICES) {
      const method = service.methods[0]!;
      const huge = Buffer.from([0x0a, ...varint(MAX_MESSAGE_BYTES + 16)]);
      const body = Buffer.concat([huge, Buffer.alloc(MAX_MESSAGE_BYTES + 16, 0x61)]);
      tally.runs++;
      const res = await rawCall(`/${service.typeName}/${method.name}`, body);
      assert.equal(codeName(res.code), codeName(Code.ResourceExhausted), `${service.name}/${method.name}: ${res.details}`);
      await observe(`${service.name}/${method.name} (over 4 MiB)`, { accepted: false, code: codeName(res.code) });
    }
    // Connect JSON and binary on the HTTP port.
    const json = `{"clientName":"${"x".repeat(MAX_MESSAGE_BYTES)}"}`;
    for (const [contentType, body] of [
      ["application/json", json],
      [
        "application/proto",
        new Uint8Array(Buffer.concat([Buffer.from([0x0a, ...varint(MAX_MESSAGE_BYTES + 16)]), Buffer.alloc(MAX_MESSAGE_BYTES + 16, 0x61)])),
      ],
    ] as const) {
      tally.runs++;
      const res = await fetch(rpcUrl(METHODS[0]!.path), {
        method: "POST",
        headers: { "content-type": contentType, authorization: `Bearer ${server.token}` },
        body,
      });
      const text = await res.text();
      assert.ok(res.status >= 400 && res.status < 500, `${contentType} over 4 MiB: HTTP ${res.status} ${text.slice(0, 200)}`);
      await observe(`${contentType} over 4 MiB`, { accepted: false, code: `HTTP ${res.status}` });
    }
  });

  test("callers with one scope each: random methods and bodies are never a server fault", async () => {
    const callers: Array<{ clientId: string; token: string }> = [];
    for (const scopes of [["apim:subscribe"], ["km:gateway"], ["km:admin"], ["apim:subscribe", "km:gateway"]])
      callers.push(await server.caller(scopes, { subscriber: "hostile" }));
    await resetSnapshot(); // the callers were just created
    const body = fc.oneof(
      fc.constant(Buffer.alloc(0)),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
    );
    await check(fc.tuple(fc.constantFrom(...callers), fc.constantFrom(...METHODS), body), 60, async ([caller, { method, path }, bytes]) => {
      const res = await rawCall(path, bytes, `Bearer ${caller.token}`);
      const label = `${method.name} by ${caller.clientId} (${bytes.toString("hex")})`;
      assertNotServerFault(label, res.code, res.details);
      assert.notEqual(res.code, Code.Unauthenticated, `${label}: ${res.details}`);
      await observe(label, { accepted: res.code === 0, code: codeName(res.code) });
    });
  });

  test("gRPC port: random authorization metadata is UNAUTHENTICATED and writes nothing", async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
    const token = server.token;
    const authorization = fc.oneof(
      printable,
      printable.map((s) => `Bearer ${s}`),
      fc.base64String({ maxLength: 120 }).map((s) => `Bearer ${s}`),
      fc.constantFrom(
        "Bearer",
        "Bearer ",
        `bearer ${token}`,
        `Basic ${token}`,
        `Bearer  ${token}`,
        `Bearer ${token}x`,
        `Bearer ${token.slice(0, -1)}`,
        `Bearer ${token}=`,
        `${token}`,
      ),
      fc.integer({ min: 4096, max: 7000 }).map((n) => `Bearer ${"A".repeat(n)}`),
    );
    const target = fc.constantFrom(...METHODS);
    await check(fc.tuple(target, authorization), 80, async ([{ method, path }, auth]) => {
      const res = await rawCall(path, Buffer.alloc(0), auth.trim() === "" ? null : auth);
      assert.equal(codeName(res.code), codeName(Code.Unauthenticated), `${method.name} with authorization ${show(auth)}: ${res.details}`);
      await observe(`${method.name} with authorization ${show(auth)}`, { accepted: false, code: codeName(res.code) });
    });
    // No authorization at all, and a very large one.
    for (const auth of [null, `Bearer ${"A".repeat(64 * 1024)}`]) {
      tally.runs++;
      const res = await rawCall(METHODS[0]!.path, Buffer.alloc(0), auth);
      assert.ok(
        res.code === Code.Unauthenticated || res.code === Code.ResourceExhausted,
        `authorization of ${auth?.length ?? 0} chars: ${codeName(res.code)} ${res.details}`,
      );
      await observe(`authorization of ${auth?.length ?? 0} chars`, { accepted: false, code: codeName(res.code) });
    }
  });

  test("HTTP port: Connect JSON with random bodies, every method", async () => {
    for (const { service, method, path } of METHODS) {
      const label = `${service.name}/${method.name} (Connect JSON)`;
      const names = method.input.fields.flatMap((f) => [f.jsonName, f.name]);
      const wrongTypes = fc
        .dictionary(names.length > 0 ? fc.constantFrom(...names) : fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 5 })
        .map((o) => JSON.stringify(o));
      const shaped = messageArb(method.input).map((init) => {
        try {
          return toJsonString(method.input, create(method.input, (init ?? {}) as never));
        } catch {
          return "{}"; // not every random message has a JSON form (Timestamp out of range)
        }
      });
      const body = fc.oneof(
        fc.json({ maxDepth: 3 }),
        wrongTypes,
        shaped,
        fc.string({ maxLength: 60 }),
        fc.constantFrom("", "{", "[]", "null", "0", '"x"', '{"a":', "{}}", '{"\\ud800":1}', "\u0000", "{".repeat(5000) + "}".repeat(5000)),
      );
      await check(body, 15, async (text) => {
        const res = await post(path, text, { "content-type": "application/json", authorization: `Bearer ${server.token}` });
        assert.ok(res.status < 500, `${label} ${show(text)}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        await observe(`${label} ${show(text)}`, { accepted: res.status === 200, code: `HTTP ${res.status}` });
      });
    }
    // Random authorization on the HTTP port: 401 (or 431 for a header the server will not read).
    const printable = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
    await check(
      fc.tuple(
        fc.constantFrom(...METHODS),
        fc.oneof(
          printable,
          printable.map((s) => `Bearer ${s}`),
          fc.constant(`Bearer ${"A".repeat(40_000)}`),
        ),
      ),
      30,
      async ([{ path }, auth]) => {
        const res = await post(path, "{}", { "content-type": "application/json", authorization: auth });
        assert.ok(res.status === 401 || res.status === 431, `${path} with authorization ${show(auth)}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
        await observe(`${path} with authorization ${show(auth)}`, { accepted: false, code: `HTTP ${res.status}` });
      },
    );
  });

  test("HTTP port: Connect binary and gRPC-Web with random bytes as the body", async () => {
    const target = fc.constantFrom(...METHODS);
    const protocol = fc.constantFrom(
      { contentType: "application/proto", frame: (b: Buffer) => b },
      // gRPC-Web: an envelope (flags, big-endian length) around the bytes, or a broken one.
      { contentType: "application/grpc-web+proto", frame: (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, (b.length >> 8) & 0xff, b.length & 0xff]), b]) },
      { contentType: "application/grpc-web+proto", frame: (b: Buffer) => b },
    );
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.constantFrom(...BROKEN_FRAMES.map(([, b]) => Buffer.from(b))),
    );
    await check(fc.tuple(target, protocol, bytes), 80, async ([{ path }, { contentType, frame }, body]) => {
      const res = await fetch(rpcUrl(path), {
        method: "POST",
        headers: { "content-type": contentType, authorization: `Bearer ${server.token}`, ...(contentType.includes("grpc-web") ? { "x-grpc-web": "1" } : {}) },
        body: new Uint8Array(frame(body)),
      });
      const payload = Buffer.from(await res.arrayBuffer());
      const label = `${path} ${contentType} ${body.subarray(0, 40).toString("hex")}`;
      // gRPC-Web answers HTTP 200 with the status in grpc-status (a header or the trailer frame).
      const trailer = payload.toString("latin1");
      const grpcStatus = res.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(trailer)?.[1] ?? undefined;
      const message =
        grpcStatus !== undefined ? decodeURIComponent(res.headers.get("grpc-message") ?? /grpc-message:\s*([^\r\n]*)/.exec(trailer)?.[1] ?? "") : trailer;
      assert.ok(res.status < 500, `${label}: HTTP ${res.status} ${message.slice(0, 200)}`);
      if (contentType.includes("grpc-web")) {
        assert.ok(grpcStatus !== undefined, `${label}: no grpc-status`);
        assertNotServerFault(label, Number(grpcStatus), message);
      }
      const accepted = res.status === 200 && (grpcStatus === undefined || grpcStatus === "0");
      await observe(label, { accepted, code: grpcStatus !== undefined ? `HTTP ${res.status} grpc-status ${grpcStatus}` : `HTTP ${res.status}` });
    });
  });

  test("HTTP port: an undecodable binary body is a client error on Connect and gRPC-Web", async () => {
    const body = new Uint8Array([0x08, 0xff]); // a truncated varint
    const path = "/keymanager.v1.KeyManagerService/CreateApplication";
    const headers = { authorization: `Bearer ${server.token}` };
    const connect = await fetch(rpcUrl(path), { method: "POST", headers: { ...headers, "content-type": "application/proto" }, body });
    const web = await fetch(rpcUrl(path), {
      method: "POST",
      headers: { ...headers, "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: new Uint8Array([0, 0, 0, 0, body.length, ...body]),
    });
    const webBody = Buffer.from(await web.arrayBuffer()).toString("latin1");
    const webStatus = web.headers.get("grpc-status") ?? /grpc-status:\s*(\d+)/.exec(webBody)?.[1];
    assert.equal(connect.status, 400, `Connect: HTTP ${connect.status} ${await connect.text()}`);
    assert.equal(webStatus, String(Code.InvalidArgument), `gRPC-Web: grpc-status ${webStatus}`);
    assert.match(decodeURIComponent(/grpc-message:\s*([^\r\n]*)/.exec(webBody)?.[1] ?? ""), /cannot decode message keymanager\.v1\.CreateApplicationRequest/);
    // Compressed, and Connect GET (read RPCs), are decoded the same way.
    const gzipped = await fetch(rpcUrl(path), {
      method: "POST",
      headers: { ...headers, "content-type": "application/proto", "content-encoding": "gzip" },
      body: gzipSync(body),
    });
    assert.equal(gzipped.status, 400, `Connect gzip: HTTP ${gzipped.status} ${await gzipped.text()}`);
    const query = `connect=v1&encoding=proto&base64=1&message=${Buffer.from(body).toString("base64url")}`;
    const get = await fetch(rpcUrl(`/keymanager.v1.KeyManagerService/RetrieveApplication?${query}`), { headers });
    const getBody = await get.text();
    assert.equal(get.status, 400, `Connect GET: HTTP ${get.status} ${getBody}`);
    assert.equal(JSON.parse(getBody).code, "invalid_argument");
    // A valid binary body still reaches the service (its own answer, not a decoding error).
    const valid = await fetch(rpcUrl(path), { method: "POST", headers: { ...headers, "content-type": "application/proto" }, body: new Uint8Array(0) });
    assert.equal(valid.status, 400);
    assert.doesNotMatch(await valid.text(), /cannot decode/);
  });

  test("regression: a map key outside Latin-1 in a violation answers INVALID_ARGUMENT on both ports", async () => {
    // The field path `additional_properties[<key>]` went into the x-invalid-fields header, which
    // refused the character: the gRPC port never answered and the HTTP port answered INTERNAL.
    for (const key of ["k\ufeff", "\u2028", "ключ", "😀", "a\ud800"]) {
      const request = createRequest({ additionalProperties: { [key]: "x".repeat(1001) } });
      for (const client of [server.grpc, server.connect]) {
        tally.runs++;
        const err = await client.createApplication(request, { timeoutMs: 10_000 }).then(
          () => assert.fail(`${show(key)} accepted`),
          (e: unknown) => ConnectError.from(e),
        );
        assert.equal(codeName(err.code), codeName(Code.InvalidArgument), `${show(key)}: ${err.rawMessage}`);
        assert.match(err.rawMessage, /additional_properties\[/);
        await observe(`additional_properties key ${show(key)}`, { accepted: false, code: codeName(err.code) });
      }
    }
  });

  test("HTTP port: OAuth2 token, introspect and revoke with random forms and client authentication", async () => {
    const FORM_KEYS = [
      "grant_type",
      "client_id",
      "client_secret",
      "scope",
      "username",
      "password",
      "refresh_token",
      "token",
      "token_type_hint",
      "validity_period",
      "redirect_uri",
      "code",
    ];
    const value = fc.oneof(
      fc.constantFrom(
        "client_credentials",
        "password",
        "refresh_token",
        "authorization_code",
        "fuzz-user",
        "correct horse battery",
        "read:orders",
        "openid",
        "access_token",
        "refresh_token",
        "3600",
        "-1",
        "99999999999999",
        "1e3",
        "",
      ),
      fc.string({ maxLength: 30 }),
      fc.string({ unit: "binary", maxLength: 20 }),
      fc.string({ unit: CONTROL, maxLength: 5 }),
    );
    const form = fc.dictionary(
      fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...FORM_KEYS) }, { weight: 1, arbitrary: fc.string({ maxLength: 10 }) }),
      value,
      { maxKeys: 6 },
    );
    const basic = (s: string) => `Basic ${Buffer.from(s, "utf8").toString("base64")}`;
    type Auth = { kind: "none" | "random" | "garbage" | "bearer" | "valid-basic" | "valid-post"; header?: string };
    const auth: fc.Arbitrary<Auth> = fc.oneof(
      fc.constant<Auth>({ kind: "none" }),
      fc
        .tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 20 }))
        .map(([id, secret]): Auth => ({ kind: "random", header: basic(`fuzz-${encodeURIComponent(id)}:${secret}`) })),
      fc
        .string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 })
        .map((s): Auth => ({ kind: "garbage", header: `Basic ${s}` })),
      fc.constantFrom<Auth>(
        { kind: "garbage", header: basic("no colon") },
        { kind: "garbage", header: basic("%zz:%zz") },
        { kind: "garbage", header: "Basic" },
        { kind: "bearer", header: `Bearer ${server.token}` },
      ),
      fc.constant<Auth>({ kind: "valid-basic", header: basic(`${encodeURIComponent(app.consumerKey)}:${encodeURIComponent(app.consumerSecret)}`) }),
      fc.constant<Auth>({ kind: "valid-post" }),
    );
    const shape = fc.constantFrom("urlencoded", "urlencoded", "urlencoded", "urlencoded; charset=utf-8", "json", "none", "repeated", "oversized");
    const endpoint = fc.constantFrom("/oauth2/token", "/oauth2/introspect", "/oauth2/revoke");
    await check(fc.record({ endpoint, form, auth, shape }), 150, async ({ endpoint, form, auth, shape }) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(form)) {
        // A valid client's id never goes with a wrong secret: that would pause the client (throttle).
        if (k === "client_id" || k === "client_secret") continue;
        params.set(k, v);
      }
      if (auth.kind === "valid-post") {
        params.set("client_id", app.consumerKey);
        params.set("client_secret", app.consumerSecret);
      } else if (auth.kind !== "valid-basic") {
        if (form.client_id !== undefined) params.set("client_id", `fuzz-${form.client_id}`);
        if (form.client_secret !== undefined) params.set("client_secret", form.client_secret);
      }
      let body = params.toString();
      if (shape === "repeated") body += `&${body || "token=x"}`;
      if (shape === "oversized") body += `&pad=${"x".repeat(70 * 1024)}`;
      const headers: Record<string, string> = {};
      if (shape === "json") headers["content-type"] = "application/json";
      else if (shape !== "none")
        headers["content-type"] = shape.startsWith("urlencoded;") ? "application/x-www-form-urlencoded; charset=utf-8" : "application/x-www-form-urlencoded";
      if (auth.header) headers.authorization = auth.header;
      const res = await post(endpoint, body, headers);
      const label = `POST ${endpoint} ${show({ form: body.slice(0, 200), auth: auth.kind, shape })}`;
      assert.ok(res.status < 500, `${label}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
      assert.ok(res.status === 200 || (res.status >= 400 && res.status < 500), `${label}: HTTP ${res.status}`);
      // RFC 7009 2.2 / RFC 7662 2.2: an authenticated client asking about an unknown token gets 200.
      const wellFormed = shape.startsWith("urlencoded") && !(auth.kind === "valid-basic" && form.client_secret !== undefined);
      const authenticated = auth.kind === "valid-basic" || auth.kind === "valid-post";
      if (wellFormed && authenticated && endpoint !== "/oauth2/token" && (params.get("token") ?? "") !== "") {
        assert.equal(res.status, 200, `${label}: ${res.text.slice(0, 200)}`);
        if (endpoint === "/oauth2/introspect") assert.equal((JSON.parse(res.text) as { active: boolean }).active, false, label);
      }
      if (!authenticated && endpoint !== "/oauth2/token") assert.notEqual(res.status, 200, `${label}: answered without client authentication`);
      await observe(label, { accepted: res.status === 200, code: `HTTP ${res.status}` });
    });
    // Other methods on the OAuth2 paths.
    for (const path of ["/oauth2/token", "/oauth2/introspect", "/oauth2/revoke"]) {
      tally.runs++;
      const res = await fetch(rpcUrl(path), { method: "PUT", body: "x" });
      assert.equal(res.status, 405);
      await observe(`PUT ${path}`, { accepted: false, code: `HTTP ${res.status}` });
    }
  });

  const storeRoutes = join(fileURLToPath(new URL(".", import.meta.url)), "..", "src", "transport", "store-rest-routes.ts");
  if (existsSync(storeRoutes)) {
    test("HTTP port: Store REST keys endpoint with random ids, key types and bodies", async () => {
      const segment = fc.oneof(
        fc.constantFrom(app.applicationId, "PRODUCTION", "SANDBOX", "production", "", "..", "%2e%2e", "%00", "%ff", "%"),
        fc.string({ maxLength: 20 }).map(percentEncode),
        fc.string({ unit: "binary", maxLength: 10 }).map(percentEncode),
        hugeString.map((s) => percentEncode(s.slice(0, 4000)).slice(0, 6000)),
      );
      const grantTypes = fc.array(fc.oneof(fc.constantFrom("client_credentials", "password", "refresh_token", "authorization_code", "implicit"), stringArb()), {
        maxLength: 5,
      });
      const body = fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc.string({ maxLength: 60 }),
        fc.constantFrom(
          "",
          "{",
          "null",
          "[]",
          '{"callbackUrl":"x"}',
          '{"supportedGrantTypes":["client_credentials","password"]}',
          '{"callbackUrl":"https://a.example/cb"}',
          '{"supportedGrantTypes":"client_credentials"}',
          '{"supportedGrantTypes":[1,2]}',
          '{"callbackUrl":null}',
        ),
        fc
          .record(
            {
              supportedGrantTypes: fc.oneof(grantTypes, fc.constant(null), fc.jsonValue({ maxDepth: 1 })),
              callbackUrl: fc.oneof(stringArb(), fc.constant(null), fc.jsonValue({ maxDepth: 1 })),
              keyState: stringArb(),
            },
            { requiredKeys: [] },
          )
          .map((o) => JSON.stringify(o)),
      );
      const header = fc.oneof(
        fc.constant(undefined),
        fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 }),
      );
      // Half of the requests name the existing application's PRODUCTION keys, so that random
      // headers and bodies reach past "no such application".
      const often = <T>(value: T, other: fc.Arbitrary<T>) => fc.oneof({ weight: 1, arbitrary: fc.constant(value) }, { weight: 1, arbitrary: other });
      const request = fc.record({
        method: fc.constantFrom("GET", "GET", "PUT", "PUT", "PUT", "DELETE", "POST"),
        id: often(app.applicationId, segment),
        keyType: often("PRODUCTION", segment),
        query: fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: segment.map((g) => `?groupId=${g}`) }),
        body,
        auth: fc.constantFrom("admin", "admin", "admin", "none", "garbage"),
        contentType: often<string | undefined>("application/json", header),
        accept: often<string | undefined>(undefined, fc.oneof(header, fc.constantFrom("application/json", "*/*", "text/html", "application/*;q=0"))),
        ifMatch: often<string | undefined>(undefined, fc.oneof(header, fc.constantFrom("*", 'W/"x"', '"x"'))),
        ifUnmodifiedSince: often<string | undefined>(
          undefined,
          fc.oneof(
            fc.date({ noInvalidDate: true }).map((d) => d.toUTCString()),
            header,
          ),
        ),
      });
      await check(request, 80, async (r) => {
        const url = rpcUrl(`/api/am/store/v0.13/applications/${r.id}/keys/${r.keyType}${r.query}`);
        const headers: Record<string, string> = {};
        if (r.contentType !== undefined) headers["content-type"] = r.contentType;
        if (r.accept !== undefined) headers.accept = r.accept;
        if (r.ifMatch !== undefined) headers["if-match"] = r.ifMatch;
        if (r.ifUnmodifiedSince !== undefined) headers["if-unmodified-since"] = r.ifUnmodifiedSince;
        if (r.auth === "admin") headers.authorization = `Bearer ${server.token}`;
        if (r.auth === "garbage") headers.authorization = `Bearer ${r.id}`;
        const res = await fetch(url, { method: r.method, headers, ...(r.method === "GET" ? {} : { body: r.body }) });
        const text = await res.text();
        const label = `${r.method} ${url.slice(0, 200)} ${show({ ...r, id: undefined, keyType: undefined, body: r.body.slice(0, 100) })}`;
        assert.ok(res.status < 500, `${label}: HTTP ${res.status} ${text.slice(0, 200)}`);
        await observe(label, { accepted: res.status >= 200 && res.status < 300, code: `HTTP ${res.status}` });
      });
    });
  } else {
    test.todo(
      "HTTP port: Store REST keys endpoint (GET/PUT /api/am/store/v0.13/applications/{id}/keys/{keyType}) — src/transport/store-rest-routes.ts does not exist yet",
    );
  }

  test("the server still answers on both ports, and what was run", async (t) => {
    const health = await rawCall("/grpc.health.v1.Health/Check", Buffer.alloc(0), null);
    assert.equal(health.code, 0, `gRPC health: ${health.details}`);
    const res = await fetch(rpcUrl("/healthz"));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "SERVING" });
    const keys = await server.client(SigningKeyService).listSigningKeys({});
    assert.ok(keys.signingKeys.length > 0);
    const codes = [...tally.codes.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${n}`)
      .join(", ");
    const line =
      `fast-check: ${tally.runs} runs of ${tally.properties} properties over ${METHODS.length} methods of ${SERVICES.length} services; ` +
      `${tally.calls} calls, ${tally.rejected} rejected, ${tally.accepted} accepted; ${tally.snapshots} table snapshots compared; ` +
      `by answer: ${codes}`;
    t.diagnostic(line);
    console.log(line);
    for (const [name, p] of parts) t.diagnostic(`  ${name}: ${p.calls} calls, ${p.rejected} rejected, ${p.accepted} accepted`);
  });
});
