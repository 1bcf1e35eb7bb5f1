// npm run bench [-- --postgres URL] [-- --seconds N] [-- --quick]
// Drives ValidateToken over gRPC with h2load and compares it, in the same run, with a no-op RPC
// on the same grpc-js server, with the ValidateTokens stream (many checks per call) and with
// oidc-provider's introspection; then (unless --quick) the same with 1,000,000
// stored tokens, and client_credentials issuing against oidc-provider's /token. Writes
// bench/RESULTS.md (or prints with --no-write).
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService, ValidateTokenRequestSchema, ValidateTokensRequestSchema } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { Authorization, CheckRequestSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { AuthLevel, KeyType, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { hashToken } from "../src/oauth/token-hash.js";
import { serverDatabase } from "../test/support/databases.js";
import { startBackend, startNginx, startPlainNginx } from "../test/support/real-gateways.js";
import { gatewayStreamPhase } from "./gateway-stream.js";

const { values } = parseArgs({
  options: {
    postgres: { type: "string" },
    seconds: { type: "string", default: "10" },
    rounds: { type: "string", default: "5" },
    "no-write": { type: "boolean", default: false },
    /**
     * "metrics": only the metrics on/off phase; "gateways": only ext_authz Check against ValidateToken;
     * "nginx": only nginx with auth_request against nginx without it; "gateway-stream": only the
     * Watch stream's figures (bench/gateway-stream.ts); "gateway-lib": @keymanager/gateway's in-process
     * decisions against unary ValidateToken and the ValidateTokens stream (bench/gateway-lib.ts)
     * "unary": bare grpc-js no-op, pipeline no-op, ValidateToken, a bare grpc-js bidi stream and
     * the ValidateTokens stream, rotated rounds, server CPU per call (#14); "paired": the same
     * loads in pairs run at the same time on two servers sharing one core (#14)
     * (each printed, not written).
     */
    only: { type: "string" },
    /** Only the unary and stream rounds at 10,000 tokens: no 1,000,000-token rounds, no issuing. */
    quick: { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
/** h2load's warm-up before each measured window, seconds (KM_BENCH_WARM_UP, default 2). */
const WARM_UP = Number(process.env.KM_BENCH_WARM_UP ?? 2);
const CONNECTIONS = 8;
const STREAMS = 32;
const STREAM_CHECKS = 1000;
const work = mkdtempSync(join(tmpdir(), "km-bench-"));
const children: ChildProcess[] = [];
const cleanups: Array<() => Promise<void>> = [];

function h2loadPath(): string {
  try {
    return execFileSync("sh", ["-c", "command -v h2load"]).toString().trim();
  } catch {
    console.log("h2load not found: installing Debian's nghttp2-client");
    execFileSync("sh", [
      "-c",
      "apt-get install -y nghttp2-client >/dev/null 2>&1 || (apt-get update >/dev/null && apt-get install -y nghttp2-client >/dev/null)",
    ]);
    return execFileSync("sh", ["-c", "command -v h2load"]).toString().trim();
  }
}
const H2LOAD = h2loadPath();

/** taskset, when present: servers run on core 0 and h2load on core 1, so neither steals the other's. */
const TASKSET = (() => {
  try {
    return execFileSync("sh", ["-c", "command -v taskset"]).toString().trim();
  } catch {
    return "";
  }
})();

/**
 * KM_BENCH_CALLGRIND=1 (with --only unary): the key manager runs under valgrind's callgrind and
 * each load is a fixed number of requests (KM_BENCH_CALLGRIND_REQUESTS, default 16,000) whose
 * instructions are counted: repeatable on a machine whose other users move every timing.
 */
const CALLGRIND = process.env.KM_BENCH_CALLGRIND === "1";
const CALLGRIND_REQUESTS = Number(process.env.KM_BENCH_CALLGRIND_REQUESTS ?? 16_000);

async function startChild(cmd: string, args: string[], env: Record<string, string>, core = 0): Promise<{ child: ChildProcess; info: Record<string, number> }> {
  if (CALLGRIND && args[0]?.endsWith("km-server.js")) {
    [cmd, args] = ["valgrind", ["--tool=callgrind", "--callgrind-out-file=/dev/null", "--dump-line=no", "--dump-instr=no", cmd, ...args]];
  }
  const child = TASKSET
    ? spawn(TASKSET, ["-c", String(core), cmd, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] })
    : spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`${cmd} exited with ${code}`)));
  });
  return { child, info: JSON.parse(line) };
}

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

function frame(bytes: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([header, Buffer.from(bytes)]);
}

interface Load {
  url: string;
  /** A file sent as each request's body (a POST); empty: a GET. */
  body: string;
  connections: number;
  streams: number;
  headers: string[];
  h1?: boolean;
  /** Checks per call: a ValidateTokens call's body holds this many requests (1 for unary calls). */
  messages?: number;
}

interface Outcome {
  /** Server CPU time (user + system) per answered request, microseconds: robust to a noisy machine. */
  cpuUs: number;
  rps: number;
  ok: number;
  failed: number;
  p50: number;
  p99: number;
  /** The server's CPU time over the wall time of the load (1: a whole core). */
  cpuShare: number;
}

/** CPU time a process has used so far, microseconds (utime + stime of /proc/PID/stat). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
let measuredPid = 0;

/** Runs several h2load processes at once (one body file each) and adds up their figures. */
async function drive(loads: Load[], pid = measuredPid, core = 1): Promise<Outcome> {
  const cpuBefore = pid ? cpuMicros(pid) : 0;
  const started = performance.now();
  const runs = loads.map((load, i) => {
    const log = join(work, `h2load-${Date.now()}-${i}.log`);
    const args = [
      ...(load.h1 ? ["--h1"] : []),
      "-c",
      String(load.connections),
      "-m",
      String(load.streams),
      "-t",
      "1",
      "-D",
      String(SECONDS),
      `--warm-up-time=${WARM_UP}`,
      ...(load.body ? ["-d", load.body] : []),
      "--log-file",
      log,
      ...load.headers.flatMap((h) => ["-H", h]),
      load.url,
    ];
    return new Promise<{ stdout: string; log: string }>((resolve, reject) => {
      // Load generators on one core, servers on the other (see pinned()).
      const p = spawn(TASKSET ? TASKSET : H2LOAD, TASKSET ? ["-c", String(core), H2LOAD, ...args] : args, { stdio: ["ignore", "pipe", "inherit"] });
      let stdout = "";
      p.stdout.on("data", (d) => (stdout += d));
      p.on("exit", (code) => (code === 0 ? resolve({ stdout, log }) : reject(new Error(`h2load exited ${code}: ${stdout}`))));
    });
  });
  const results = await Promise.all(runs);
  const cpuUsed = pid ? cpuMicros(pid) - cpuBefore : 0;
  const cpuShare = cpuUsed / ((performance.now() - started) * 1000);
  let ok = 0;
  let failed = 0;
  const latencies: number[] = [];
  for (const [i, r] of results.entries()) {
    const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(r.stdout);
    const messages = loads[i]?.messages ?? 1;
    ok += Number(m?.[1] ?? 0) * messages;
    failed += Number(m?.[2] ?? 0) * messages;
    for (const line of readFileSync(r.log, "utf8").split("\n")) {
      const us = Number(line.split("\t")[2]);
      if (us > 0) latencies.push(us);
    }
  }
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => (latencies[Math.floor(q * (latencies.length - 1))] ?? 0) / 1000;
  // The CPU window includes the warm-up, so count its requests too (all "done" requests).
  const done = results.reduce((n, r, i) => n + Number(/requests: (\d+) total/.exec(r.stdout)?.[1] ?? 0) * (loads[i]?.messages ?? 1), 0);
  return { cpuUs: done > 0 ? Math.round(cpuUsed / done) : 0, rps: Math.round(ok / SECONDS), ok, failed, p50: pick(0.5), p99: pick(0.99), cpuShare };
}

/** Instructions the process has run so far, all threads (callgrind's Ir, through callgrind_control). */
function instructions(pid: number): number {
  const out = execFileSync("callgrind_control", ["-e", "Ir", String(pid)]).toString();
  let total = 0;
  for (const m of out.matchAll(/^\s*Th\s*\d+\s+([\d,]+)\s*$/gm)) total += Number(m[1]?.replace(/,/g, ""));
  if (total === 0) throw new Error(`callgrind_control: no totals in ${out}`);
  return total;
}

/** Runs `loads` to a fixed number of requests (messages: loads with `messages` count them) and gives the server's instructions per request. */
async function countInstructions(loads: Load[], pid: number): Promise<{ instructions: number; requests: number }> {
  const before = instructions(pid);
  let requests = 0;
  const weights = loads.reduce((n, l) => n + l.connections, 0);
  await Promise.all(
    loads.map((load) => {
      const calls = Math.max(load.connections, Math.round((CALLGRIND_REQUESTS * load.connections) / weights / (load.messages ?? 1)));
      requests += calls * (load.messages ?? 1);
      const args = [
        "-c",
        String(load.connections),
        "-m",
        String(load.streams),
        "-t",
        "1",
        "-n",
        String(calls),
        "-d",
        load.body,
        ...load.headers.flatMap((h) => ["-H", h]),
        load.url,
      ];
      return new Promise<void>((resolve, reject) => {
        const p = spawn(H2LOAD, args, { stdio: ["ignore", "pipe", "inherit"] });
        let stdout = "";
        p.stdout.on("data", (d) => (stdout += d));
        p.on("exit", (code) => {
          const m = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded/.exec(stdout);
          if (code === 0 && Number(m?.[1]) === calls) resolve();
          else reject(new Error(`h2load exited ${code}: ${stdout}`));
        });
      });
    }),
  );
  return { instructions: Math.round((instructions(pid) - before) / requests), requests };
}

const GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"];
const ROUNDS = Math.max(1, Number(values.rounds));

/** The round with the median rate. */
function median(rounds: Outcome[]): Outcome {
  return [...rounds].sort((a, b) => a.rps - b.rps)[Math.floor(rounds.length / 2)] as Outcome;
}

function medianOf(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
}

/**
 * The median over rounds of each round's own ratio. The two figures of a round ran back to back,
 * so they share that moment's machine; a slow window lowers both and leaves their ratio alone.
 */
function pairedRatio(numerators: Outcome[], denominators: Outcome[]): number {
  return medianOf(numerators.map((n, i) => n.rps / (denominators[i]?.rps || 1)));
}

/** What bench/gateway-lib.ts measures (typed here: that file is not part of the root build). */
interface GatewayLibResult {
  jwt: { rps: number; cpuUs: number }[];
  opaque: { rps: number; cpuUs: number }[];
  unary: Outcome[];
  stream: Outcome[];
  memory: { subscriptions: number; heapMiB: number; bytesPerSubscription: number; loadMs: number };
  revocation: { samples: number; all: Percentiles; jwt: Percentiles; opaque: Percentiles };
}

/** What bench/km-server.ts prints of itself. */
interface ServerInfo {
  grpcPort: number;
  /** The plain grpc-js server of the bare baselines. */
  bareGrpcPort: number;
  gatewayToken: string;
}

interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

async function main() {
  // On PostgreSQL a database of the run's own, dropped at the end; the URL's database is untouched.
  const server = values.postgres ? await serverDatabase("postgres", values.postgres) : undefined;
  if (server) cleanups.push(() => server.drop());
  const databaseUrl = server?.url ?? `sqlite:${join(work, "km.db")}`;
  // KM_BENCH_CPU_PROF=DIR writes a CPU profile of the key manager there.
  const profile = process.env.KM_BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.KM_BENCH_CPU_PROF}`] : [];
  // The compiled service (npm run build), as `npm start` runs it.
  const kmEnv = { KM_DATA_DIR: work, KM_DATABASE_URL: databaseUrl, KM_ENCRYPTION_KEY: randomBytes(32).toString("base64") };
  const km = await startChild(process.execPath, [...profile, "dist/bench/km-server.js"], kmEnv);
  const { grpcPort, bareGrpcPort, httpPort, adminToken, gatewayToken } = km.info as unknown as ServerInfo & {
    httpPort: number;
    adminToken: string;
  };
  const pid = km.child.pid as number;
  measuredPid = pid;
  const transport = createGrpcTransport({
    baseUrl: `http://127.0.0.1:${grpcPort}`,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${adminToken}`);
        return next(req);
      },
    ],
  });
  const kmClient = createClient(KeyManagerService, transport);
  const subs = createClient(SubscriptionService, transport);

  // An API, its resources, an application subscribed to it, and tokens of three kinds.
  await subs.createApi({ api: { apiId: "bench-api", name: "Bench", context: "/bench", version: "1.0.0", publisher: "bench" } });
  await kmClient.registerNewResource({
    resource: {
      apiId: "bench-api",
      resources: [{ uriTemplate: "/items/{id}", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: ["items:read"], throttlingTier: "Unlimited" }],
    },
  });
  const applicationId = randomUUID();
  const app = (
    await kmClient.createApplication({
      application: {
        applicationId,
        keyType: KeyType.PRODUCTION,
        clientName: "bench",
        grantTypes: ["client_credentials"],
        scopes: ["items:read"],
      },
    })
  ).application;
  if (!app) throw new Error("no application");
  const seededSubscription =
    (await subs.createSubscription({ subscription: { applicationId, apiId: "bench-api", tier: "Gold" } })).subscription?.subscriptionId ?? "";
  const issue = async (validity = 0n) =>
    (
      await kmClient.getNewApplicationAccessToken({
        request: {
          clientId: app.consumerKey,
          clientSecret: app.consumerSecret,
          grantType: "client_credentials",
          scopes: ["items:read"],
          validityPeriodSeconds: validity,
        },
      })
    ).token?.accessToken ?? "";
  const valid = await issue();
  const expired = await issue(1n);
  const invalid = randomBytes(32).toString("base64url");
  await new Promise((r) => setTimeout(r, 1500));

  const bodies: Record<string, string> = {};
  for (const [name, token] of Object.entries({ valid, invalid, expired })) {
    const file = join(work, `${name}.bin`);
    writeFileSync(
      file,
      frame(
        toBinary(
          ValidateTokenRequestSchema,
          create(ValidateTokenRequestSchema, { context: "/bench", version: "1.0.0", accessToken: token, matchingResource: "/items/{id}", httpVerb: "GET" }),
        ),
      ),
    );
    bodies[name] = file;
  }
  // ValidateTokens: each call sends STREAM_CHECKS requests (ids 1, 2, ...) and half-closes; the
  // server answers each. h2load counts calls, drive() multiplies them by the checks of each.
  const streamBodies: Record<string, string> = {};
  for (const [name, token] of Object.entries({ valid, invalid, expired })) {
    const file = join(work, `${name}-stream.bin`);
    const request = { context: "/bench", version: "1.0.0", accessToken: token, matchingResource: "/items/{id}", httpVerb: "GET" };
    const frames = Array.from({ length: STREAM_CHECKS }, (_, i) =>
      frame(toBinary(ValidateTokensRequestSchema, create(ValidateTokensRequestSchema, { requestId: BigInt(i + 1), request }))),
    );
    writeFileSync(file, Buffer.concat(frames));
    streamBodies[name] = file;
  }
  const validateUrl = `http://127.0.0.1:${grpcPort}/keymanager.v1.TokenValidationService/ValidateToken`;
  const rows: Array<[string, Outcome, string]> = [];
  const record = (name: string, o: Outcome) => {
    rows.push([name, o, `${rssMiB(pid)} MiB`]);
    console.log(
      `${name}: ${o.rps} req/s, ${o.cpuUs} µs server CPU/request, p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms, ok ${o.ok}, failed ${o.failed}`,
    );
  };
  // h2load counts HTTP 200 as success whatever the gRPC status: check once that the gateway's
  // token is accepted and the valid token is authorized, so the figures are real answers.
  const gatewayClient = createClient(
    TokenValidationService,
    createGrpcTransport({
      baseUrl: `http://127.0.0.1:${grpcPort}`,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${gatewayToken}`);
          return next(req);
        },
      ],
    }),
  );
  const check = await gatewayClient.validateToken({
    context: "/bench",
    version: "1.0.0",
    accessToken: valid,
    matchingResource: "/items/{id}",
    httpVerb: "GET",
  });
  if (!check.authorized) throw new Error(`the valid token is not authorized: ${check.statusName}`);
  // The mix: 6 connections of valid tokens, 1 of unknown ones, 1 of expired ones; 32 streams each.
  // The baseline gets the same three h2load processes and bodies, so both share the CPU alike.
  // Gateways call with their own system client's token, as in production.
  const grpcHeaders = [...GRPC_HEADERS, `authorization: Bearer ${gatewayToken}`];
  const mix = (url = validateUrl, headers = grpcHeaders): Load[] => [
    { url, body: bodies.valid as string, connections: 6, streams: STREAMS, headers },
    { url, body: bodies.invalid as string, connections: 1, streams: STREAMS, headers },
    { url, body: bodies.expired as string, connections: 1, streams: STREAMS, headers },
  ];
  // The same mix over ValidateTokens-shaped bidi streams: one call of STREAM_CHECKS messages at a
  // time per connection (each carries that many checks in flight already).
  const streamMix = (url: string, headers = grpcHeaders): Load[] =>
    (["valid", "invalid", "expired"] as const).map((name) => ({
      url,
      body: streamBodies[name] as string,
      connections: name === "valid" ? 6 : 1,
      streams: 1,
      headers,
      messages: STREAM_CHECKS,
    }));

  // Envoy's ext_authz Check against ValidateToken, alternating rounds, the same tokens and mix:
  // CheckRequests as Envoy builds them (headers with pseudo-headers, the path with a query), so
  // Check also locates the API by the path and matches its URI template.
  const checkBodies: Record<string, string> = {};
  const checkRequest = (token: string) =>
    create(CheckRequestSchema, {
      attributes: {
        request: {
          http: {
            id: "1",
            method: "GET",
            path: "/bench/1.0.0/items/7?lang=en",
            host: "api.example.com",
            scheme: "https",
            protocol: "HTTP/2",
            headers: {
              ":authority": "api.example.com",
              ":method": "GET",
              ":path": "/bench/1.0.0/items/7?lang=en",
              ":scheme": "https",
              authorization: `Bearer ${token}`,
              "user-agent": "bench",
              "x-request-id": "00000000-0000-0000-0000-000000000000",
            },
          },
        },
      },
    });
  for (const [name, token] of Object.entries({ valid, invalid, expired })) {
    const file = join(work, `check-${name}.bin`);
    writeFileSync(file, frame(toBinary(CheckRequestSchema, checkRequest(token))));
    checkBodies[name] = file;
  }
  const checkUrl = `http://127.0.0.1:${grpcPort}/envoy.service.auth.v3.Authorization/Check`;
  const envoyClient = createClient(
    Authorization,
    createGrpcTransport({
      baseUrl: `http://127.0.0.1:${grpcPort}`,
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${gatewayToken}`);
          return next(req);
        },
      ],
    }),
  );
  const allowed = await envoyClient.check(checkRequest(valid));
  if (allowed.status?.code !== 0) throw new Error(`Check refuses the valid token: ${JSON.stringify(allowed.status)}`);
  const checkMix = (): Load[] => [
    { url: checkUrl, body: checkBodies.valid as string, connections: 6, streams: STREAMS, headers: grpcHeaders },
    { url: checkUrl, body: checkBodies.invalid as string, connections: 1, streams: STREAMS, headers: grpcHeaders },
    { url: checkUrl, body: checkBodies.expired as string, connections: 1, streams: STREAMS, headers: grpcHeaders },
  ];
  const gatewaysPhase = async () => {
    const checks: Outcome[] = [];
    const validates: Outcome[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        checks.push(await drive(checkMix()));
        validates.push(await drive(mix()));
      } else {
        validates.push(await drive(mix()));
        checks.push(await drive(checkMix()));
      }
      console.log(
        `round ${round + 1}: ext_authz Check ${checks[round]?.rps} req/s ${checks[round]?.cpuUs} µs, ValidateToken ${validates[round]?.rps} req/s ${validates[round]?.cpuUs} µs`,
      );
    }
    return {
      checks,
      validates,
      ratios: {
        "ext_authz Check / ValidateToken, throughput (median of per-round ratios)": pairedRatio(checks, validates),
        "ext_authz Check / ValidateToken, server CPU per request ValidateToken / Check (median of per-round ratios)": medianOf(
          checks.map((o, i) => (validates[i]?.cpuUs ?? 0) / (o.cpuUs || 1)),
        ),
      },
    };
  };
  // nginx in front of an API (Debian's nginx, the README's examples/nginx/nginx.conf) against the
  // same nginx proxying without auth_request: real HTTP/1.1 GETs of a valid token through both,
  // alternating rounds. The difference is what forward auth costs each request end to end.
  const nginxPhase = async () => {
    const backend = await startBackend();
    cleanups.push(() => backend.close());
    const gatewayValues = { kmHttpAddress: `127.0.0.1:${httpPort}`, backendAddress: backend.address, gatewaySecret: gatewayToken };
    const withAuth = await startNginx(gatewayValues);
    cleanups.push(() => withAuth.stop());
    const plain = await startPlainNginx(gatewayValues);
    cleanups.push(() => plain.stop());
    const path = "/bench/1.0.0/items/7";
    const probe = await fetch(`http://127.0.0.1:${withAuth.port}${path}`, { headers: { authorization: `Bearer ${valid}` } });
    if (probe.status !== 200) throw new Error(`nginx with auth_request refuses the valid token: ${probe.status} ${await probe.text()}`);
    const refused = await fetch(`http://127.0.0.1:${withAuth.port}${path}`, { headers: { authorization: `Bearer ${invalid}` } });
    if (refused.status !== 401) throw new Error(`nginx with auth_request lets an unknown token through: ${refused.status}`);
    const load = (port: number): Load[] => [
      { url: `http://127.0.0.1:${port}${path}`, body: "", connections: 32, streams: 1, headers: [`authorization: Bearer ${valid}`], h1: true },
    ];
    const authed: Outcome[] = [];
    const bare: Outcome[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      if (round % 2 === 0) {
        authed.push(await drive(load(withAuth.port)));
        bare.push(await drive(load(plain.port)));
      } else {
        bare.push(await drive(load(plain.port)));
        authed.push(await drive(load(withAuth.port)));
      }
      console.log(`round ${round + 1}: nginx with auth_request ${authed[round]?.rps} req/s, without ${bare[round]?.rps} req/s`);
    }
    const a = median(authed);
    const b = median(bare);
    return {
      authed,
      bare,
      ratios: {
        "nginx with auth_request / without, throughput (median of per-round ratios)": pairedRatio(authed, bare),
        "nginx auth_request overhead per request, p50 latency added (ms)": a.p50 - b.p50,
        "nginx auth_request overhead per request, key manager CPU µs (forward auth)": a.cpuUs,
      },
    };
  };
  if (values.only === "nginx") {
    const { authed, bare, ratios } = await nginxPhase();
    record("nginx with auth_request (forward auth), HTTP/1.1, 32 connections", median(authed));
    record("nginx without auth_request, same backend (key manager not asked)", median(bare));
    for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
    return;
  }
  if (values.only === "gateways") {
    const { checks, validates, ratios } = await gatewaysPhase();
    record("ext_authz Check (path located and matched)", median(checks));
    record("ValidateToken (matching_resource given)", median(validates));
    for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
    return;
  }

  if (values.only === "gateway-lib") {
    // A JWT application beside the opaque one, subscribed alike.
    const jwtApplicationId = randomUUID();
    const jwtApp = (
      await kmClient.createApplication({
        application: {
          applicationId: jwtApplicationId,
          keyType: KeyType.PRODUCTION,
          clientName: "bench-jwt",
          grantTypes: ["client_credentials"],
          scopes: ["items:read"],
          tokenType: TokenType.JWT,
        },
      })
    ).application;
    if (!jwtApp) throw new Error("no application");
    await subs.createSubscription({ subscription: { applicationId: jwtApplicationId, apiId: "bench-api", tier: "Gold" } });
    const jwt =
      (
        await kmClient.getNewApplicationAccessToken({
          request: { clientId: jwtApp.consumerKey, clientSecret: jwtApp.consumerSecret, grantType: "client_credentials", scopes: ["items:read"] },
        })
      ).token?.accessToken ?? "";
    const db = createKnex({ url: databaseUrl, poolMax: 2 });
    cleanups.push(() => db.destroy());
    // Loaded by path: the library's sources are not part of the root build (tsconfig.build.json).
    const libModule = "./gateway-lib.js";
    const { gatewayLibPhase } = (await import(libModule)) as { gatewayLibPhase: (ctx: unknown) => Promise<GatewayLibResult> };
    const unaryLoad = (): Load[] => [{ url: validateUrl, body: bodies.valid as string, connections: CONNECTIONS, streams: STREAMS, headers: grpcHeaders }];
    const streamUrl = `http://127.0.0.1:${grpcPort}/keymanager.v1.TokenValidationService/ValidateTokens`;
    const streamLoad = (): Load[] => [
      { url: streamUrl, body: streamBodies.valid as string, connections: CONNECTIONS, streams: 1, headers: grpcHeaders, messages: STREAM_CHECKS },
    ];
    const r = await gatewayLibPhase({
      grpcPort,
      gatewayToken,
      tokens: { jwt, opaque: valid },
      request: { context: "/bench", version: "1.0.0", resource: "/items/{id}", verb: "GET" },
      apiId: "bench-api",
      db,
      rounds: ROUNDS,
      seconds: SECONDS,
      unary: () => drive(unaryLoad()),
      stream: () => drive(streamLoad()),
      issue: async (kind: "jwt" | "opaque") => {
        const client = kind === "jwt" ? jwtApp : undefined;
        return client
          ? ((
              await kmClient.getNewApplicationAccessToken({
                request: { clientId: client.consumerKey, clientSecret: client.consumerSecret, grantType: "client_credentials", scopes: ["items:read"] },
              })
            ).token?.accessToken ?? "")
          : issue();
      },
      revoke: async (token: string) => {
        await kmClient.revokeToken({ token });
      },
      revocationSamples: Number(process.env.KM_BENCH_REVOCATION_SAMPLES ?? 400),
      // KM_BENCH_REVOCATION_ONLY=1: only the revocation-to-refusal figures.
      revocationOnly: process.env.KM_BENCH_REVOCATION_ONLY === "1",
    });
    const rv = r.revocation;
    const ms = (p: Percentiles) => `${p.p50.toFixed(1)} / ${p.p99.toFixed(1)} / ${p.max.toFixed(1)} ms`;
    if (process.env.KM_BENCH_REVOCATION_ONLY === "1") {
      console.log(
        `revocation to refusal through the example gateway (RevokeToken answered -> first 401), ${rv.samples} samples: p50 / p99 / max ${ms(rv.all)}`,
      );
      console.log(`the same, JWT (decided in process): ${ms(rv.jwt)}; opaque (asked again of the server): ${ms(rv.opaque)}`);
      return;
    }
    const perRound = (lib: { rps: number }[], base: Outcome[]) => medianOf(lib.map((l, i) => l.rps / (base[i]?.rps || 1)));
    const cpuRatio = (lib: { cpuUs: number }[], base: Outcome[]) => medianOf(lib.map((l, i) => (base[i]?.cpuUs ?? 0) / (l.cpuUs || 1)));
    const mj = [...r.jwt].sort((a, b) => a.rps - b.rps)[Math.floor(r.jwt.length / 2)]!;
    const mo = [...r.opaque].sort((a, b) => a.rps - b.rps)[Math.floor(r.opaque.length / 2)]!;
    const table = [
      "| figure | value |",
      "|---|---|",
      `| in process, JWT (signature verified once; the answer kept while the copy is unchanged): decisions/s, CPU µs/decision (medians) | ${mj.rps} / ${mj.cpuUs.toFixed(2)} |`,
      `| in process, opaque token the server vouched for once: decisions/s, CPU µs/decision (medians) | ${mo.rps} / ${mo.cpuUs.toFixed(2)} |`,
      `| unary ValidateToken (h2load, ${CONNECTIONS} connections x ${STREAMS} streams): req/s, server CPU µs/request (medians) | ${median(r.unary).rps} / ${median(r.unary).cpuUs} |`,
      `| ValidateTokens stream (h2load, ${CONNECTIONS} streams x ${STREAM_CHECKS} checks): checks/s, server CPU µs/check (medians) | ${median(r.stream).rps} / ${median(r.stream).cpuUs} |`,
      `| in process JWT / unary, throughput (median of per-round ratios) | ${perRound(r.jwt, r.unary).toFixed(1)}x |`,
      `| in process opaque / unary, throughput (median of per-round ratios) | ${perRound(r.opaque, r.unary).toFixed(1)}x |`,
      `| in process JWT / unary, CPU per decision (unary server CPU / library CPU, median of per-round ratios) | ${cpuRatio(r.jwt, r.unary).toFixed(1)}x |`,
      `| ValidateTokens stream / unary, throughput (median of per-round ratios) | ${pairedRatio(r.stream, r.unary).toFixed(2)}x |`,
      `| live copy of ${r.memory.subscriptions} subscriptions: heap, per subscription, snapshot load | ${r.memory.heapMiB.toFixed(1)} MiB, ${r.memory.bytesPerSubscription.toFixed(0)} B, ${r.memory.loadMs.toFixed(0)} ms |`,
      `| revocation to refusal through the example gateway (RevokeToken answered -> first 401), ${rv.samples} samples: p50 / p99 / max | ${ms(rv.all)} |`,
      `| the same, JWT (decided in process) / opaque (asked again of the server), p50 / p99 / max | ${ms(rv.jwt)}; ${ms(rv.opaque)} |`,
    ];
    console.log(table.join("\n"));
    return;
  }

  if (values.only === "gateway-stream") {
    // On PostgreSQL, watchers of the latency on a second replica: changes cross the change log.
    const replica = server ? await startChild(process.execPath, ["dist/bench/km-server.js"], kmEnv) : undefined;
    const watched = replica
      ? { ...(replica.info as unknown as { grpcPort: number; gatewayToken: string }), pid: replica.child.pid as number }
      : { grpcPort, gatewayToken, pid };
    const db = createKnex({ url: databaseUrl, poolMax: 2 });
    cleanups.push(() => db.destroy());
    const r = await gatewayStreamPhase({
      writer: { grpcPort, adminToken, gatewayToken, pid },
      watched,
      subscriptionId: seededSubscription,
      apiId: "bench-api",
      db,
      rounds: ROUNDS,
      drive: () => drive(mix()),
      rssKiB: (p) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, "utf8"))?.[1] ?? 0),
    });
    const table = [
      `| figure | value |`,
      `|---|---|`,
      `| commit -> watcher${replica ? " on another replica" : " (one replica)"}, p50 / p99 | ${r.latency.p50.toFixed(1)} / ${r.latency.p99.toFixed(1)} ms (${r.latency.count} commits) |`,
      `| write call -> commit stamp / stamp -> call answered / write call -> watcher, p50 / p99 | ${[r.breakdown.callToStamp, r.breakdown.stampToAnswer, r.breakdown.callToArrival].map((q) => `${q.p50.toFixed(1)} / ${q.p99.toFixed(1)}`).join("; ")} ms |`,
      `| ValidateToken with 100 watchers / none, throughput (median of per-round ratios) | ${r.ratio.toFixed(2)} |`,
      `| ValidateToken req/s, server CPU µs/request: none / 100 watchers (medians) | ${median(r.without).rps} / ${median(r.with).rps}; ${medianOf(r.without.map((o) => o.cpuUs))} / ${medianOf(r.with.map((o) => o.cpuUs))} |`,
      `| server memory per watcher (RSS, ${r.watchersForMemory} watchers) | ${r.memoryPerWatcherKiB.toFixed(1)} KiB |`,
      `| snapshot of ${r.snapshot.entities} entities (100,000 subscriptions) | ${r.snapshot.ms.toFixed(0)} ms, ${(r.snapshot.bytes / 2 ** 20).toFixed(1)} MiB in ${r.snapshot.chunks} chunks |`,
    ];
    console.log(table.join("\n"));
    return;
  }

  // The unary check and the ValidateTokens stream against bare grpc-js (#14): bare unary no-op,
  // pipeline no-op, ValidateToken, bare grpc-js bidi stream, ValidateTokens stream, the order
  // rotated each round so no load always gets the fresher window; CPU per request of the server.
  if (values.only === "unary") {
    const url = (path: string) => `http://127.0.0.1:${grpcPort}${path}`;
    const bareUrl = (path: string) => `http://127.0.0.1:${bareGrpcPort}${path}`;
    const loads: Array<[string, () => Load[]]> = [
      ["bare grpc-js no-op (no authentication, pre-encoded answer)", () => mix(bareUrl("/bench.RawNoopService/Noop"), GRPC_HEADERS)],
      // The bare no-op sent the caller's token too (not checked): what carrying it costs grpc-js and node:http2.
      ["bare grpc-js no-op, the caller's authorization header sent (not checked)", () => mix(bareUrl("/bench.RawNoopService/Noop"))],
      ["no-op unary RPC (this service's pipeline: token check, context)", () => mix(url("/bench.NoopService/Noop"))],
      ["ValidateToken", () => mix()],
      [
        `bare grpc-js bidi stream (no authentication, pre-encoded answers), ${STREAM_CHECKS} messages per call, per message`,
        () => streamMix(bareUrl("/bench.RawStreamService/Noop"), GRPC_HEADERS),
      ],
      [`ValidateTokens stream, ${STREAM_CHECKS} checks per call, per check`, () => streamMix(url("/keymanager.v1.TokenValidationService/ValidateTokens"))],
    ];
    // KM_BENCH_LOADS=0,2,3: only those loads (by their place in the list above); ratios whose two
    // loads both ran are printed.
    const chosen = process.env.KM_BENCH_LOADS ? new Set(process.env.KM_BENCH_LOADS.split(",").map(Number)) : undefined;
    const runs = [...loads.keys()].filter((i) => !chosen || chosen.has(i));
    if (CALLGRIND) {
      for (let i = loads.length - 1; i >= 0; i--) if (!runs.includes(i)) loads.splice(i, 1);
      // A first pass warms each load up (V8 compiles the hot paths); the counted passes follow.
      const counts: number[][] = loads.map(() => []);
      for (let round = 0; round <= ROUNDS; round++) {
        for (const [i, [name, load]] of loads.entries()) {
          const { instructions: n, requests } = await countInstructions(load(), pid);
          if (round > 0) counts[i]?.push(n);
          console.log(`${round === 0 ? "warm-up" : `round ${round}`}: ${name}: ${n} instructions per request (${requests} requests)`);
        }
      }
      for (const [i, [name]] of loads.entries()) console.log(`${name}: ${medianOf(counts[i] as number[])} instructions per request (median)`);
      return;
    }
    const outcomes: Outcome[][] = loads.map(() => []);
    // KM_BENCH_PROFILE=DIR: a CPU profile of the server per load and round (load-I-round-R.cpuprofile).
    const profileDir = process.env.KM_BENCH_PROFILE;
    let profiles = 0;
    for (const i of runs) console.log(`load ${i}: ${loads[i]?.[0]}`);
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < runs.length; k++) {
        const i = runs[(k + round) % runs.length] as number;
        const [, load] = loads[i] as [string, () => Load[]];
        if (profileDir) process.kill(pid, "SIGUSR2");
        outcomes[i]?.push(await drive(load()));
        if (profileDir) {
          // The server writes phase-N.cpuprofile; named here after the load and round.
          process.kill(pid, "SIGUSR2");
          const written = join(profileDir, `phase-${++profiles}.cpuprofile`);
          for (let wait = 0; wait < 100 && !existsSync(written); wait++) await new Promise((r) => setTimeout(r, 100));
          renameSync(written, join(profileDir, `load-${i}-round-${round + 1}.cpuprofile`));
        }
      }
      console.log(
        `round ${round + 1}: ${runs.map((i) => `load ${i}: ${outcomes[i]?.[round]?.rps}/s ${outcomes[i]?.[round]?.cpuUs} µs (core ${outcomes[i]?.[round]?.cpuShare.toFixed(2)})`).join("; ")}`,
      );
    }
    for (const i of runs) record(loads[i]?.[0] as string, median(outcomes[i] as Outcome[]));
    // Each round's own ratio; printed as the median and the spread over rounds.
    const cpuRatio = (a: Outcome[], b: Outcome[]) => a.map((o, i) => (b[i]?.cpuUs ?? 0) / (o.cpuUs || 1));
    const pairedRatio = (a: Outcome[], b: Outcome[]) => a.map((o, i) => o.rps / (b[i]?.rps || 1));
    const ratios: Array<[string, number, number, (a: Outcome[], b: Outcome[]) => number[]]> = [
      ["ValidateToken / bare grpc-js no-op, throughput (median of per-round ratios)", 3, 0, pairedRatio],
      ["ValidateToken / bare grpc-js no-op, CPU per call bare / ValidateToken (median of per-round ratios)", 3, 0, cpuRatio],
      ["ValidateToken / bare grpc-js no-op with the authorization header, throughput (median of per-round ratios)", 3, 1, pairedRatio],
      ["ValidateToken / bare grpc-js no-op with the authorization header, CPU per call (median of per-round ratios)", 3, 1, cpuRatio],
      ["ValidateToken / pipeline no-op, throughput (median of per-round ratios)", 3, 2, pairedRatio],
      ["ValidateTokens stream / unary ValidateToken, checks per second (median of per-round ratios)", 5, 3, pairedRatio],
      ["ValidateTokens stream / bare grpc-js bidi stream, messages per second (median of per-round ratios)", 5, 4, pairedRatio],
      ["bare grpc-js bidi stream / bare grpc-js unary no-op, messages per second (median of per-round ratios)", 4, 0, pairedRatio],
    ];
    for (const [k, a, b, ratio] of ratios) {
      if (!runs.includes(a) || !runs.includes(b)) continue;
      const perRound = ratio(outcomes[a] as Outcome[], outcomes[b] as Outcome[]);
      const spread = `${Math.min(...perRound).toFixed(2)}-${Math.max(...perRound).toFixed(2)}`;
      // Noise only ever adds time: each load's least disturbed round (its fastest, its cheapest)
      // is the closest look at its own cost, a second estimate beside the median of round ratios.
      const best = (o: Outcome[]) => ({ rps: Math.max(...o.map((x) => x.rps)), cpuUs: Math.min(...o.map((x) => x.cpuUs)) });
      const [ba, bb] = [best(outcomes[a] as Outcome[]), best(outcomes[b] as Outcome[])];
      const bestRatio = ratio([ba as Outcome], [bb as Outcome])[0] as number;
      console.log(`${k}: ${medianOf(perRound).toFixed(2)} (rounds ${spread}; each load's best round: ${bestRatio.toFixed(2)})`);
    }
    for (const i of runs) console.log(`load ${i} rounds (req/s, µs CPU): ${JSON.stringify(outcomes[i]?.map((o) => [o.rps, o.cpuUs]))}`);
    return;
  }

  // Paired loads (#14): two more key manager processes A and B on the same database, both on
  // core 0, each driven by its own h2load (core 1) at the same time, one with each load of a pair;
  // the next round swaps them. Both loads share the same seconds of the same core, so a slow
  // window of the shared machine slows both alike and their ratio (throughput, CPU per call of
  // each process over the same window) keeps to what each call costs. KM_BENCH_PAIRS=0,2 picks pairs.
  if (values.only === "paired") {
    // KM_BENCH_PAIRED_CORES=split: A on core 0 and B on core 1, each one's h2load on the other's core.
    const split = process.env.KM_BENCH_PAIRED_CORES === "split";
    const servers = [];
    for (const [core, name] of ["A", "B"].entries()) {
      const child = await startChild(process.execPath, ["dist/bench/km-server.js"], kmEnv, split ? core : 0);
      servers.push({ name, pid: child.child.pid as number, core: split ? core : 0, ...(child.info as unknown as ServerInfo) });
    }
    const loadCore = (s: Server) => (split ? 1 - s.core : 1);
    type Server = (typeof servers)[number];
    const authHeaders = (s: Server) => [...GRPC_HEADERS, `authorization: Bearer ${s.gatewayToken}`];
    const validateOn = (s: Server) => mix(`http://127.0.0.1:${s.grpcPort}/keymanager.v1.TokenValidationService/ValidateToken`, authHeaders(s));
    const named: Record<string, [string, (s: Server) => Load[]]> = {
      validate: ["ValidateToken", validateOn],
      bare: ["bare grpc-js no-op", (s) => mix(`http://127.0.0.1:${s.bareGrpcPort}/bench.RawNoopService/Noop`, GRPC_HEADERS)],
      bareAuth: [
        "bare grpc-js no-op, the caller's authorization header sent",
        (s) => mix(`http://127.0.0.1:${s.bareGrpcPort}/bench.RawNoopService/Noop`, authHeaders(s)),
      ],
      stream: [
        `ValidateTokens stream (${STREAM_CHECKS} checks per call), per check`,
        (s) => streamMix(`http://127.0.0.1:${s.grpcPort}/keymanager.v1.TokenValidationService/ValidateTokens`, authHeaders(s)),
      ],
      bareStream: [
        `bare grpc-js bidi stream (${STREAM_CHECKS} messages per call), per message`,
        (s) => streamMix(`http://127.0.0.1:${s.bareGrpcPort}/bench.RawStreamService/Noop`, GRPC_HEADERS),
      ],
    };
    const pairs: Array<[string, string]> = [
      ["validate", "bare"],
      ["validate", "bareAuth"],
      ["stream", "validate"],
      ["stream", "bareStream"],
      ["bareStream", "bare"],
    ];
    const chosen = process.env.KM_BENCH_PAIRS ? new Set(process.env.KM_BENCH_PAIRS.split(",").map(Number)) : undefined;
    const [a, b] = servers as [Server, Server];
    // Every load once on each server first: code compiled, caches filled, connections' first costs paid.
    for (const [, load] of Object.values(named)) await Promise.all([drive(load(a), a.pid, loadCore(a)), drive(load(b), b.pid, loadCore(b))]);
    const summary: string[] = [];
    for (const [p, [x, y]] of pairs.entries()) {
      if (chosen && !chosen.has(p)) continue;
      const [xName, xLoad] = named[x] as [string, (s: Server) => Load[]];
      const [yName, yLoad] = named[y] as [string, (s: Server) => Load[]];
      const byRate: number[] = [];
      const byCpu: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const [onX, onY] = round % 2 === 0 ? [a, b] : [b, a];
        const [ox, oy] = await Promise.all([drive(xLoad(onX), onX.pid, loadCore(onX)), drive(yLoad(onY), onY.pid, loadCore(onY))]);
        byRate.push(ox.rps / (oy.rps || 1));
        byCpu.push(oy.cpuUs / (ox.cpuUs || 1));
        console.log(
          `pair ${p} round ${round + 1}: ${x} on ${onX.name} ${ox.rps}/s ${ox.cpuUs} µs (core share ${ox.cpuShare.toFixed(2)}, failed ${ox.failed}); ` +
            `${y} on ${onY.name} ${oy.rps}/s ${oy.cpuUs} µs (core share ${oy.cpuShare.toFixed(2)}, failed ${oy.failed}); ratio ${byRate.at(-1)?.toFixed(2)} / CPU ${byCpu.at(-1)?.toFixed(2)}`,
        );
      }
      const describe = (v: number[]) => {
        const sorted = [...v].sort((m, n) => m - n);
        const q = (f: number) => sorted[Math.round(f * (sorted.length - 1))] as number;
        return `${medianOf(v).toFixed(2)} (quartiles ${q(0.25).toFixed(2)}-${q(0.75).toFixed(2)}, rounds ${q(0).toFixed(2)}-${q(1).toFixed(2)})`;
      };
      summary.push(`${xName} / ${yName}, throughput: ${describe(byRate)}; CPU per call (${y} / ${x}): ${describe(byCpu)}`);
    }
    console.log(summary.join("\n"));
    return;
  }

  // Metrics on against metrics off: two more servers on the same database, started alike after
  // the seeding (so neither carries the seeding server's history), one with [metrics] enabled =
  // false, driven alternately with the same mix; each one's CPU per request measured on its own process.
  const comparisonServer = async (enabled: boolean) => {
    const child = await startChild(process.execPath, ["dist/bench/km-server.js"], { ...kmEnv, KM_METRICS_ENABLED: String(enabled) });
    const info = child.info as unknown as { grpcPort: number; gatewayToken: string };
    const load = () =>
      mix(`http://127.0.0.1:${info.grpcPort}/keymanager.v1.TokenValidationService/ValidateToken`, [
        ...GRPC_HEADERS,
        `authorization: Bearer ${info.gatewayToken}`,
      ]);
    return { pid: child.child.pid as number, load };
  };
  const metricsOn = await comparisonServer(true);
  const metricsOff = await comparisonServer(false);
  const offPid = metricsOff.pid;
  const metricsPhase = async () => {
    const on: Outcome[] = [];
    const off: Outcome[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      // Alternating which goes first, so neither always gets the fresher window.
      if (round % 2 === 0) {
        on.push(await drive(metricsOn.load(), metricsOn.pid));
        off.push(await drive(metricsOff.load(), offPid));
      } else {
        off.push(await drive(metricsOff.load(), offPid));
        on.push(await drive(metricsOn.load(), metricsOn.pid));
      }
      console.log(
        `round ${round + 1}: ValidateToken metrics on ${on[round]?.rps} req/s ${on[round]?.cpuUs} µs, off ${off[round]?.rps} req/s ${off[round]?.cpuUs} µs`,
      );
    }
    return {
      on,
      off,
      ratios: {
        "ValidateToken metrics on / off, throughput (median of per-round ratios)": pairedRatio(on, off),
        "ValidateToken metrics on / off, server CPU per request off / on (median of per-round ratios)": medianOf(
          on.map((o, i) => (off[i]?.cpuUs ?? 0) / (o.cpuUs || 1)),
        ),
      },
    };
  };
  if (values.only === "metrics") {
    const { on, off, ratios } = await metricsPhase();
    for (const [name, o] of [
      ["ValidateToken, metrics on", median(on)],
      ["ValidateToken, metrics off", median(off)],
    ] as const) {
      console.log(`${name}: ${o.rps} req/s, ${o.cpuUs} µs server CPU/request, p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms, failed ${o.failed}`);
    }
    for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
    return;
  }
  const noop = (): Load[] => mix(`http://127.0.0.1:${grpcPort}/bench.NoopService/Noop`);
  const streamUrl = `http://127.0.0.1:${grpcPort}/keymanager.v1.TokenValidationService/ValidateTokens`;
  const rawNoop = (): Load[] => mix(`http://127.0.0.1:${bareGrpcPort}/bench.RawNoopService/Noop`);

  // oidc-provider in its own process: introspection of its own token, and its /token.
  const oidcPort = 20000 + Math.floor(Math.random() * 20000);
  const oidc = await startChild(process.execPath, ["bench/oidc-server.mjs", String(oidcPort)], {});
  const oidcBase = `http://127.0.0.1:${oidc.info.port}`;
  const basicOidc = `authorization: Basic ${Buffer.from("bench:bench-secret-0123456789").toString("base64")}`;
  const oidcToken = (
    (await (
      await fetch(`${oidcBase}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", authorization: basicOidc.slice(15) },
        body: "grant_type=client_credentials",
      })
    ).json()) as { access_token: string }
  ).access_token;
  const formHeaders = ["content-type: application/x-www-form-urlencoded"];
  const introspectBody = join(work, "introspect.form");
  writeFileSync(introspectBody, `token=${oidcToken}`);
  const ccBody = join(work, "cc.form");
  writeFileSync(ccBody, "grant_type=client_credentials");
  const basicKm = `authorization: Basic ${Buffer.from(`${app.consumerKey}:${app.consumerSecret}`).toString("base64")}`;

  const seed = createKnex({ url: databaseUrl, poolMax: 2 });
  await insertTokens(seed, app.consumerKey, 10_000);
  // Alternating rounds, medians reported: on a shared machine one window can be twice another.
  const noopRounds: Outcome[] = [];
  const rawNoopRounds: Outcome[] = [];
  const validateRounds: Outcome[] = [];
  const streamRounds: Outcome[] = [];
  const introspectRounds: Outcome[] = [];
  const oidcPid = oidc.child.pid as number;
  const introspect = (): Load[] => [
    { url: `${oidcBase}/token/introspection`, body: introspectBody, connections: 32, streams: 1, headers: [...formHeaders, basicOidc], h1: true },
  ];
  const profiled = async (load: Load[]) => {
    // With KM_BENCH_PROFILE set, each of these phases is profiled on its own.
    if (process.env.KM_BENCH_PROFILE) process.kill(pid, "SIGUSR2");
    const outcome = await drive(load);
    if (process.env.KM_BENCH_PROFILE) process.kill(pid, "SIGUSR2");
    return outcome;
  };
  for (let round = 0; round < ROUNDS; round++) {
    rawNoopRounds.push(await profiled(rawNoop()));
    noopRounds.push(await profiled(noop()));
    validateRounds.push(await profiled(mix()));
    streamRounds.push(await profiled(streamMix(streamUrl)));
    introspectRounds.push(await drive(introspect(), oidcPid));
    console.log(
      `round ${round + 1}: bare no-op ${rawNoopRounds[round]?.rps}, no-op ${noopRounds[round]?.rps}, ValidateToken ${validateRounds[round]?.rps}, ValidateTokens stream ${streamRounds[round]?.rps} checks/s (${streamRounds[round]?.cpuUs} µs CPU each), oidc-provider introspection ${introspectRounds[round]?.rps} req/s`,
    );
  }
  record("bare grpc-js no-op (no authentication, pre-encoded answer)", median(rawNoopRounds));
  record("no-op unary RPC (this service's pipeline: token check, context), 10,000 stored tokens", median(noopRounds));
  record("ValidateToken, 10,000 stored tokens", median(validateRounds));
  record(`ValidateTokens stream (${STREAM_CHECKS} checks per call, one call per connection), 10,000 stored tokens, per check`, median(streamRounds));
  record("oidc-provider introspection (HTTP/1.1, 32 connections)", median(introspectRounds));
  const streamRatios = {
    "ValidateTokens stream / unary ValidateToken, checks per second (median of per-round ratios)": pairedRatio(streamRounds, validateRounds),
    "server CPU per check: unary ValidateToken / ValidateTokens stream":
      medianOf(validateRounds.map((o) => o.cpuUs)) / medianOf(streamRounds.map((o) => o.cpuUs)),
  };
  if (values.quick) {
    await seed.destroy();
    for (const [k, v] of Object.entries(streamRatios)) console.log(`${k}: ${v.toFixed(2)}`);
    return;
  }
  const gateways = await gatewaysPhase();
  record("ext_authz Check (path located and matched)", median(gateways.checks));
  const nginx = await nginxPhase();
  record("nginx with auth_request (forward auth), HTTP/1.1, 32 connections", median(nginx.authed));
  record("nginx without auth_request, same backend (key manager not asked)", median(nginx.bare));
  const metrics = await metricsPhase();
  rows.push(["ValidateToken, metrics on (a second server)", median(metrics.on), `${rssMiB(metricsOn.pid)} MiB`]);
  rows.push(["ValidateToken, metrics off (a third server, [metrics] enabled = false)", median(metrics.off), `${rssMiB(offPid)} MiB`]);
  console.log("storing 1,000,000 tokens ...");
  await insertTokens(seed, app.consumerKey, 990_000);
  await seed.destroy();
  // The no-op again, alternating with the 1,000,000-token rounds: it tells a slower machine
  // (both drop) from a check that feels the table (only ValidateToken drops).
  const largeNoopRounds: Outcome[] = [];
  const largeRounds: Outcome[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    largeNoopRounds.push(await profiled(noop()));
    largeRounds.push(await profiled(mix()));
    console.log(`round ${round + 1} (1,000,000 tokens): no-op ${largeNoopRounds[round]?.rps}, ValidateToken ${largeRounds[round]?.rps} req/s`);
  }
  record("no-op unary RPC (this service's pipeline), 1,000,000 stored tokens", median(largeNoopRounds));
  record("ValidateToken, 1,000,000 stored tokens", median(largeRounds));
  record(
    "client_credentials issuing, this service (HTTP/1.1, 32 connections)",
    await drive([
      { url: `http://127.0.0.1:${httpPort}/oauth2/token`, body: ccBody, connections: 32, streams: 1, headers: [...formHeaders, basicKm], h1: true },
    ]),
  );
  record(
    "client_credentials issuing, oidc-provider (HTTP/1.1, 32 connections)",
    await drive([{ url: `${oidcBase}/token`, body: ccBody, connections: 32, streams: 1, headers: [...formHeaders, basicOidc], h1: true }], oidcPid),
  );

  const row = (prefix: string) => rows.find(([n]) => n.startsWith(prefix))?.[1] ?? { rps: 0, cpuUs: 0 };
  const validateVsNoop = pairedRatio(validateRounds, noopRounds);
  const largeVsNoop = pairedRatio(largeRounds, largeNoopRounds);
  const ratios: Record<string, number> = {
    // The headline (#14): against bare grpc-js (no authentication, pre-encoded answer), by throughput and by CPU per call.
    "ValidateToken / bare grpc-js no-op, throughput (median of per-round ratios)": pairedRatio(validateRounds, rawNoopRounds),
    "ValidateToken / bare grpc-js no-op, server CPU per call bare / ValidateToken (median of per-round ratios)": medianOf(
      validateRounds.map((o, i) => (rawNoopRounds[i]?.cpuUs ?? 0) / (o.cpuUs || 1)),
    ),
    "ValidateToken / no-op RPC through this service's pipeline (median of per-round ratios)": validateVsNoop,
    "ValidateToken / oidc-provider introspection (median of per-round ratios)": pairedRatio(validateRounds, introspectRounds),
    "ValidateToken 1,000,000 / 10,000 tokens, each against its own rounds' no-op": largeVsNoop / validateVsNoop,
    "ValidateToken 1,000,000 / 10,000 tokens, raw medians": row("ValidateToken, 1,000,000").rps / row("ValidateToken, 10,000").rps,
    "issuing / oidc-provider /token": row("client_credentials issuing, this").rps / row("client_credentials issuing, oidc").rps,
    "server CPU per request: no-op / ValidateToken": medianOf(noopRounds.map((o) => o.cpuUs)) / medianOf(validateRounds.map((o) => o.cpuUs)),
    "server CPU per request: oidc-provider introspection / ValidateToken":
      medianOf(introspectRounds.map((o) => o.cpuUs)) / medianOf(validateRounds.map((o) => o.cpuUs)),
    "server CPU per request: ValidateToken 10,000 / 1,000,000 tokens": medianOf(validateRounds.map((o) => o.cpuUs)) / medianOf(largeRounds.map((o) => o.cpuUs)),
    ...gateways.ratios,
    ...nginx.ratios,
    ...metrics.ratios,
    ...streamRatios,
  };
  for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
  report(rows, ratios, databaseUrl.split(":")[0] as string);
}

/** Stored tokens of other sessions, inserted directly: the table the hot path must not feel. */
async function insertTokens(db: ReturnType<typeof createKnex>, consumerKey: string, count: number): Promise<void> {
  const now = Date.now();
  for (let done = 0; done < count; ) {
    const batch = Math.min(500, count - done);
    const rows = Array.from({ length: batch }, () => ({
      id: randomUUID(),
      token_hash: hashToken(randomBytes(32).toString("base64url")),
      consumer_key: consumerKey,
      end_user: "",
      scopes: '["items:read"]',
      token_type: "OPAQUE",
      grant_type: "client_credentials",
      issued_at: now,
      expires_at: now + 3_600_000,
      revoked_at: null,
      refresh_hash: null,
      refresh_expires_at: null,
      refresh_used_at: null,
      family_id: randomUUID(),
    }));
    await db("access_tokens").insert(rows);
    done += batch;
  }
}

function report(rows: Array<[string, Outcome, string]>, ratios: Record<string, number>, database: string): void {
  const cpu = cpus()[0]?.model ?? "unknown";
  const lines = [
    `### ${new Date().toISOString().slice(0, 10)}: ${database}, ${cpus().length} cores (${cpu}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
    "",
    `h2load, ${SECONDS} s per figure after ${WARM_UP} s warm-up; gRPC figures with ${CONNECTIONS} connections x ${STREAMS} streams`,
    `(three h2load processes: 6 connections of valid tokens, 1 of unknown, 1 of expired; the no-op gets the same);`,
    `figures are medians of ${ROUNDS} alternating rounds; ratios are medians of each round's own ratio.`,
    "",
    "| load | requests/s | server CPU µs/request | p50 ms | p99 ms | failed | key manager RSS after |",
    "|---|---|---|---|---|---|---|",
    ...rows.map(([n, o, rss]) => `| ${n} | ${o.rps} | ${o.cpuUs} | ${o.p50.toFixed(2)} | ${o.p99.toFixed(2)} | ${o.failed} | ${rss} |`),
    "",
    "| ratio | value |",
    "|---|---|",
    ...Object.entries(ratios).map(([k, v]) => `| ${k} | ${v.toFixed(2)} |`),
    "",
  ];
  const text = lines.join("\n");
  if (values["no-write"]) {
    console.log(text);
    return;
  }
  const file = "bench/RESULTS.md";
  let existing = "";
  try {
    existing = readFileSync(file, "utf8");
  } catch {}
  const marker = "<!-- runs -->";
  const head = existing.includes(marker) ? existing.slice(0, existing.indexOf(marker) + marker.length) : `# Benchmark results\n\n${marker}`;
  const rest = existing.includes(marker) ? existing.slice(existing.indexOf(marker) + marker.length) : "";
  writeFileSync(file, `${head}\n\n${text}${rest}`);
}

try {
  await main();
} finally {
  await Promise.all(
    children.map(
      (c) =>
        new Promise((resolve) => {
          if (c.exitCode !== null) return resolve(null);
          c.once("exit", resolve);
          c.kill("SIGTERM");
        }),
    ),
  );
  for (const cleanup of cleanups) await cleanup();
  rmSync(work, { recursive: true, force: true });
}
